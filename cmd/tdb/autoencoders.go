package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"tdb/autoencoder"
	"tdb/model"
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

// openAutoencoders resolves a comma-separated list of PATH_OR_NAME@LAYER[:LOCATION]
// entries; a public name without a layer (mlp_post_act_v4) means every layer.
// The location comes from the name, the file, the suffix, or the input size
// (d_mlp inputs: mlp.post_act). dropDead removes latents that never fired
// in training (node names keep the file's latent indices).
func openAutoencoders(ctx context.Context, spec string, dropDead bool, m *model.Model, stderr io.Writer) ([]attachedAE, error) {
	var out []attachedAE
	for _, entry := range strings.Split(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		ref, layerSpec, hasLayer := cutLast(entry, "@")
		var loc model.Location
		if l, suffix, ok := strings.Cut(layerSpec, ":"); ok && hasLayer {
			layerSpec = l
			var err error
			if loc, err = model.ParseLocation(suffix); err != nil {
				return nil, usagef("autoencoder %s: %v", entry, err)
			}
		}
		layers := []int{}
		if hasLayer {
			l, err := strconv.Atoi(layerSpec)
			if err != nil || l < 0 || l >= m.NLayer {
				return nil, usagef("autoencoder %s: layer %q is not in 0..%d", entry, layerSpec, m.NLayer-1)
			}
			layers = append(layers, l)
		} else {
			if _, err := autoencoder.ParseName(ref + "/0"); err != nil {
				return nil, usagef("autoencoder %s: give PATH_OR_NAME@LAYER (a public name without layer means every layer)", entry)
			}
			for l := range m.NLayer {
				layers = append(layers, l)
			}
		}
		for _, layer := range layers {
			ae, err := autoencoder.Open(ctx, ref, layer, autoencoder.Options{DropDead: dropDead}, stderr)
			if err != nil {
				return nil, err
			}
			where := loc
			if where == "" {
				where = ae.Location
			}
			if where == "" {
				if ae.NInputs != m.DMLP {
					return nil, usagef("autoencoder %s reads %d values per token: say where with @%d:LOCATION (resid.delta_mlp or resid.delta_attn)", entry, ae.NInputs, layer)
				}
				where = model.MLPPostAct
			}
			out = append(out, attachedAE{ae, layer, where})
		}
	}
	return out, nil
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}
