package autoencoder

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"tdb/model"
)

// ErrInvalid marks an autoencoder that can never be used as asked, however
// often it is retried: a missing file, a file that is not an autoencoder (or
// is corrupted, truncated, or holds unexpected tensors), an unknown public
// name, or one that does not fit the model where it is spliced (layer out of
// range, wrong width, a location without one vector per token). Callers
// test for it with errors.Is: the CLI exits with code 2, tdb collate rejects
// the job before submitting it. The error's message is unchanged by it.
var ErrInvalid = errors.New("invalid autoencoder")

type invalidError struct{ err error }

func (e invalidError) Error() string   { return e.err.Error() }
func (e invalidError) Unwrap() []error { return []error{e.err, ErrInvalid} }

func invalid(err error) error {
	if err == nil || errors.Is(err, ErrInvalid) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return invalidError{err}
}

func invalidf(format string, a ...any) error { return invalid(fmt.Errorf(format, a...)) }

// Info is what an autoencoder's header says: enough to validate a request
// without reading its weights.
type Info struct {
	Path, Format      string
	NInputs, NLatents int
	Activation        Activation
	K                 int
	// Location and Layer are where the file says it reads ("" and
	// model.NoLayer when it does not: OpenAI files never say).
	Location model.Location
	Layer    int
}

// Info returns the autoencoder's header facts.
func (a *Autoencoder) Info() Info {
	return Info{Path: a.Source, Format: a.Format, NInputs: a.NInputs, NLatents: a.NLatents,
		Activation: a.Activation, K: a.K, Location: a.Location, Layer: a.Layer}
}

// Inspect reads an autoencoder file's header only (an OpenAI .pt's pickle
// and zip directory; a SAELens cfg.json and safetensors header) and checks
// everything Load checks except the tensor data itself: the format, the
// activation, the entries (unexpected tensors are an error naming them) and
// every tensor's shape and extent in the file. Errors wrap ErrInvalid.
func Inspect(path string) (Info, error) {
	a, err := open(path, true)
	if err != nil {
		return Info{}, err
	}
	return a.Info(), nil
}

// Spec is a parsed --autoencoder entry, one of
//
//	PATH_OR_NAME@LAYER                (location from the name, the file, or the default)
//	PATH_OR_NAME@LAYER:LOCATION
//	PATH_OR_NAME@LOCATION/LAYER
//	NAME                              (a public name that carries its layer, or none: every layer)
type Spec struct {
	Ref      string         // a path or a public name
	Location model.Location // "" when not given
	Layer    int            // model.NoLayer when not given
}

// ParseSpec parses one --autoencoder entry (see Spec). Errors wrap ErrInvalid.
func ParseSpec(s string) (Spec, error) {
	s = strings.TrimSpace(s)
	ref, at, found := cutLast(s, "@")
	if !found {
		if s == "" {
			return Spec{}, invalid(errors.New("empty autoencoder spec"))
		}
		return Spec{Ref: s, Layer: model.NoLayer}, nil
	}
	bad := func(why string) error {
		return invalid(fmt.Errorf("autoencoder %q: %s (want PATH_OR_NAME@LAYER, PATH_OR_NAME@LAYER:LOCATION or PATH_OR_NAME@LOCATION/LAYER)", s, why))
	}
	if ref == "" {
		return Spec{}, bad("no path or name before '@'")
	}
	out := Spec{Ref: ref}
	layer := at
	if l, loc, ok := strings.Cut(at, ":"); ok {
		layer, out.Location = l, model.Location(loc)
	} else if loc, l, ok := strings.Cut(at, "/"); ok {
		layer, out.Location = l, model.Location(loc)
	}
	if out.Location != "" {
		if _, err := model.ParseLocation(string(out.Location)); err != nil {
			return Spec{}, bad(err.Error())
		}
	}
	n, err := strconv.Atoi(layer)
	if err != nil || n < 0 {
		return Spec{}, bad(fmt.Sprintf("layer %q is not a non-negative integer", layer))
	}
	out.Layer = n
	return out, nil
}

// Place decides where an autoencoder with this header is spliced into a
// model of cfg and checks that it fits: the location is loc if given, else
// the one the file or its public name says, else mlp.post_act when the
// autoencoder reads d_mlp values (the default of OpenAI's MLP autoencoders);
// the layer must exist, the location must hold one vector per token, and
// its width must be NInputs. Errors wrap ErrInvalid and say what to change.
func (in Info) Place(cfg model.Config, loc model.Location, layer int) (model.Site, error) {
	if loc == "" {
		loc = in.Location
	}
	if loc == "" {
		if in.NInputs != cfg.DMLP {
			return model.Site{}, invalid(fmt.Errorf("autoencoder %s reads %d values per token and its file does not say where: give the location, as PATH@LOCATION/LAYER (e.g. %s/%d, %s/%d)",
				in.Path, in.NInputs, model.ResidDeltaMLP, max(layer, 0), model.ResidDeltaAtt, max(layer, 0)))
		}
		loc = model.MLPPostAct
	}
	if loc.HasLayer() && (layer < 0 || layer >= cfg.NLayer) {
		return model.Site{}, invalid(fmt.Errorf("autoencoder %s: layer %d is out of range: the model has layers 0..%d", in.Path, layer, cfg.NLayer-1))
	}
	a := &Autoencoder{Source: in.Path, NInputs: in.NInputs, NLatents: in.NLatents}
	sp, err := a.Splice(layer, loc)
	if err != nil {
		return model.Site{}, invalid(err)
	}
	if err := sp.Check(cfg); err != nil {
		return model.Site{}, invalid(err)
	}
	return sp.Site, nil
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
