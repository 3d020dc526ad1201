package worker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"tdb/autoencoder"
	"tdb/internal/jobs"
	"tdb/model"
)

// HeadsLocation collates attention heads: one record per window whose
// values are the head's attention pattern (lower triangle) and whose score,
// which ranks it, is the write norm of each token pair.
const HeadsLocation = "attn.heads"

// AutoencoderPrefix starts the dataset location of autoencoder latents:
// "ae.mlp.post_act" holds the latents of an autoencoder reading mlp.post_act.
const AutoencoderPrefix = "ae."

// target is one collated location of one layer.
type target struct {
	location   string // dataset location name
	layer      int
	components int
	site       model.Site // captured site (per-token locations, autoencoder inputs)
	heads      bool
	// ae is the autoencoder file of latents (loaded per task: Job.aes);
	// aeInputs its inputs per token.
	ae       string
	aeInputs int
}

// ref names the target in a task's component group.
func (t target) ref() jobs.TargetRef { return jobs.TargetRef{Location: t.location, Layer: t.layer} }

// ValidateLocation reports whether loc can be collated from a model of shape
// cfg and how many components one layer of it has.
func ValidateLocation(cfg model.Config, loc string) (components int, err error) {
	if loc == HeadsLocation {
		return cfg.NHead, nil
	}
	l, err := model.ParseLocation(loc)
	if err != nil {
		return 0, fmt.Errorf("%w, or %s for attention heads", err, HeadsLocation)
	}
	switch {
	case !l.HasLayer():
		return 0, fmt.Errorf("location %s has no layer; collation needs a per-layer location such as %s", loc, model.MLPPostAct)
	case l == model.AttnQKLogits || l == model.AttnQKProbs:
		return 0, fmt.Errorf("location %s is per token pair; collate attention with %s", loc, HeadsLocation)
	}
	n := 1
	for _, d := range cfg.SiteShape(l, 1)[1:] {
		n *= d
	}
	return n, nil
}

// AutoencoderSpec is a parsed --autoencoder value: PATH@LAYER (the
// location comes from the file's name or config) or PATH@LOCATION/LAYER.
type AutoencoderSpec struct {
	Path     string
	Location model.Location // "" when it must come from the file
	Layer    int
}

// ParseAutoencoderSpec parses PATH@LAYER or PATH@LOCATION/LAYER.
func ParseAutoencoderSpec(s string) (AutoencoderSpec, error) {
	i := strings.LastIndexByte(s, '@')
	if i <= 0 || i == len(s)-1 {
		return AutoencoderSpec{}, fmt.Errorf("autoencoder %q: want PATH@LAYER or PATH@LOCATION/LAYER", s)
	}
	out := AutoencoderSpec{Path: s[:i]}
	at := s[i+1:]
	if loc, layer, ok := strings.Cut(at, "/"); ok {
		l, err := model.ParseLocation(loc)
		if err != nil {
			return AutoencoderSpec{}, fmt.Errorf("autoencoder %q: %w", s, err)
		}
		out.Location, at = l, layer
	}
	n, err := strconv.Atoi(at)
	if err != nil || n < 0 {
		return AutoencoderSpec{}, fmt.Errorf("autoencoder %q: layer %q is not a non-negative integer", s, at)
	}
	out.Layer = n
	return out, nil
}

// planTargets expands a job's locations and layers into targets.
func planTargets(ctx context.Context, cfg model.Config, locations []string, layers []int, aes []string) ([]target, error) {
	if len(locations) == 0 && len(aes) == 0 {
		return nil, fmt.Errorf("no locations to collate")
	}
	if len(layers) == 0 {
		for l := range cfg.NLayer {
			layers = append(layers, l)
		}
	}
	for _, l := range layers {
		if l < 0 || l >= cfg.NLayer {
			return nil, fmt.Errorf("layer %d is out of range: the model has layers 0..%d", l, cfg.NLayer-1)
		}
	}
	var out []target
	seen := map[string]bool{}
	add := func(t target) error {
		key := t.location + "/" + strconv.Itoa(t.layer)
		if seen[key] {
			return fmt.Errorf("location %s layer %d is listed twice", t.location, t.layer)
		}
		seen[key] = true
		out = append(out, t)
		return nil
	}
	for _, loc := range locations {
		n, err := ValidateLocation(cfg, loc)
		if err != nil {
			return nil, jobs.Permanent(err)
		}
		for _, l := range layers {
			t := target{location: loc, layer: l, components: n, heads: loc == HeadsLocation}
			if !t.heads {
				t.site = model.At(model.Location(loc), l)
			}
			if err := add(t); err != nil {
				return nil, jobs.Permanent(err)
			}
		}
	}
	for _, s := range aes {
		spec, err := ParseAutoencoderSpec(s)
		if err != nil {
			return nil, jobs.Permanent(err)
		}
		// The header only: the weights are loaded by the tasks whose
		// group has the target (Job.aes), so a worker holds those of
		// its group alone.
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		info, err := autoencoder.Inspect(spec.Path)
		if err != nil {
			if localFileProblem(spec.Path) {
				err = jobs.Permanent(err) // missing or unreadable as an autoencoder; a download may succeed later
			}
			return nil, err
		}
		// The location from the spec, else the file, else mlp.post_act
		// for an autoencoder of d_mlp inputs, as tdb run places it.
		site, err := info.Place(cfg, spec.Location, spec.Layer)
		if err != nil {
			return nil, jobs.Permanent(err)
		}
		if err := add(target{location: AutoencoderPrefix + string(site.Loc), layer: spec.Layer, components: info.NLatents, site: site,
			ae: spec.Path, aeInputs: info.NInputs}); err != nil {
			return nil, jobs.Permanent(err)
		}
	}
	return out, nil
}

// localFileProblem: path names a local file that exists (so a load error
// is about its content) or a local path that does not exist.
func localFileProblem(path string) bool {
	if strings.Contains(path, "://") {
		return false
	}
	_, err := os.Stat(path)
	return err == nil || errors.Is(err, fs.ErrNotExist)
}

// captures lists the sites the forward pass must return for the targets.
func captures(ts []target) []model.Site {
	var out []model.Site
	for _, t := range ts {
		if t.heads {
			out = append(out, model.At(model.AttnQKProbs, t.layer), model.At(model.AttnV, t.layer))
		} else {
			out = append(out, t.site)
		}
	}
	slices.SortFunc(out, func(a, b model.Site) int {
		if a.Layer != b.Layer {
			return a.Layer - b.Layer
		}
		return strings.Compare(string(a.Loc), string(b.Loc))
	})
	return slices.Compact(out)
}
