// Package saetest writes small SAELens autoencoder folders (cfg.json and
// sae_weights.safetensors) for the tests of packages that load
// autoencoders, so those tests run on a fresh clone without downloads.
package saetest

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"

	"tdb/model"
)

// Weights are an SAELens autoencoder's tensors: W_enc [In, Lat],
// W_dec [Lat, In], b_enc [Lat], b_dec [In].
type Weights struct {
	In, Lat    int
	WEnc, WDec []float32
	BEnc, BDec []float32
}

// Random draws normal weights from seed: W_enc σ 0.5, W_dec σ 0.3, b_enc
// mean encBias σ 0.1, b_dec σ 0.1.
func Random(in, lat int, seed uint64, encBias float64) Weights {
	rng := rand.New(rand.NewPCG(seed, 1))
	normal := func(n int, std, mean float64) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(mean + std*rng.NormFloat64())
		}
		return x
	}
	return Weights{In: in, Lat: lat,
		WEnc: normal(in*lat, 0.5, 0), WDec: normal(lat*in, 0.3, 0),
		BEnc: normal(lat, 0.1, encBias), BDec: normal(in, 0.1, 0)}
}

// Write writes the folder dir: the weights, and cfg.json holding cfg's
// fields plus d_in and d_sae.
func (w Weights) Write(dir string, cfg map[string]any) error {
	ts := []model.NamedTensor{
		{Name: "W_enc", Tensor: &model.Tensor{Shape: []int{w.In, w.Lat}, Data: w.WEnc}},
		{Name: "W_dec", Tensor: &model.Tensor{Shape: []int{w.Lat, w.In}, Data: w.WDec}},
		{Name: "b_enc", Tensor: &model.Tensor{Shape: []int{w.Lat}, Data: w.BEnc}},
		{Name: "b_dec", Tensor: &model.Tensor{Shape: []int{w.In}, Data: w.BDec}},
	}
	if err := model.WriteSafetensors(filepath.Join(dir, "sae_weights.safetensors"), ts, nil); err != nil {
		return err
	}
	all := map[string]any{"d_in": w.In, "d_sae": w.Lat}
	for k, v := range cfg {
		all[k] = v
	}
	raw, err := json.Marshal(all)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "cfg.json"), raw, 0o644)
}
