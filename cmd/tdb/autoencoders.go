package main

import (
	"context"
	"fmt"
	"io"

	"tdb/autoencoder"
	"tdb/debugger"
	"tdb/internal/textutil"
	"tdb/model"
	"tdb/model/tokenizer"
)

func init() {
	register("autoencoder pull", "download a public GPT-2 small autoencoder (e.g. mlp_post_act_v4/5) into the cache", cmdAutoencoderPull)
}

func cmdAutoencoderPull(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("autoencoder pull", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want one name, e.g. mlp_post_act_v4/5 or gpt2-small/resid_delta_attn/3")
	}
	path, err := autoencoder.Pull(ctx, fs.Arg(0), stderr)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, path)
	return nil
}

// attachedAE is an autoencoder and where it reads.
type attachedAE struct {
	ae    *autoencoder.Autoencoder
	layer int
	loc   model.Location
}

// openAutoencoders resolves a comma-separated list of --autoencoder entries
// (autoencoder.ParseSpec: PATH_OR_NAME@LAYER, @LAYER:LOCATION or
// @LOCATION/LAYER); a public name without a layer (mlp_post_act_v4) means
// every layer. The location comes from the entry, the name or file, or the
// input size (d_mlp inputs: mlp.post_act), as autoencoder.Info.Place
// decides. dropDead removes latents that never fired in training (node
// names keep the file's latent indices). Mistakes in the entries are usage
// errors (exit 2).
func openAutoencoders(ctx context.Context, spec string, dropDead bool, m *model.Model, stderr io.Writer) ([]attachedAE, error) {
	var out []attachedAE
	for _, entry := range textutil.List(spec) {
		sp, err := autoencoder.ParseSpec(entry)
		if err != nil {
			return nil, usageError{err}
		}
		layers := []int{}
		if sp.Layer != model.NoLayer {
			if sp.Layer >= m.NLayer {
				return nil, usagef("autoencoder %s: layer %d is out of range: the model has layers 0..%d", entry, sp.Layer, m.NLayer-1)
			}
			layers = append(layers, sp.Layer)
		} else {
			if _, err := autoencoder.ParseName(sp.Ref + "/0"); err != nil {
				return nil, usagef("autoencoder %s: give PATH_OR_NAME@LAYER (a public name without layer means every layer)", entry)
			}
			for l := range m.NLayer {
				layers = append(layers, l)
			}
		}
		for _, layer := range layers {
			ae, err := autoencoder.Open(ctx, sp.Ref, layer, autoencoder.Options{DropDead: dropDead}, stderr)
			if err != nil {
				return nil, badInput(err)
			}
			site, err := ae.Info().Place(m.Config, sp.Location, layer)
			if err != nil {
				return nil, badInput(err)
			}
			out = append(out, attachedAE{ae, site.Layer, site.Loc})
		}
	}
	return out, nil
}

// openEngine loads the model and makes the TDB engine of tdb debug and tdb
// serve, with the autoencoders of --mlp-autoencoders and
// --attn-autoencoders (openAutoencoders) attached; it returns those of
// each kind.
func openEngine(ctx context.Context, modelName, mlpAE, attnAE string, dropDead bool, stderr io.Writer) (eng *debugger.Engine, mlp, attn []attachedAE, err error) {
	m, err := loadModel(ctx, modelName, stderr)
	if err != nil {
		return nil, nil, nil, err
	}
	tok, err := tokenizer.GPT2()
	if err != nil {
		return nil, nil, nil, err
	}
	eng = debugger.New(m, tok)
	for _, kind := range []struct {
		spec string
		aes  *[]attachedAE
	}{{mlpAE, &mlp}, {attnAE, &attn}} {
		aes, err := openAutoencoders(ctx, kind.spec, dropDead, m, stderr)
		if err != nil {
			return nil, nil, nil, err
		}
		for _, a := range aes {
			if err := eng.AddAutoencoder(a.ae, a.layer, a.loc); err != nil {
				return nil, nil, nil, err
			}
		}
		*kind.aes = aes
	}
	return eng, mlp, attn, nil
}
