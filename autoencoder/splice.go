package autoencoder

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"tdb/model"
)

// All selects every sequence or every position in a LatentAblation.
const All = -1

// LatentAblation sets latent Latent of token (Batch, Token) to Value.
// Batch or Token may be All.
type LatentAblation struct {
	Batch, Token, Latent int
	Value                float32
}

// Spliced is an autoencoder attached to one site of the model. Its Hook
// encodes every token's activation x into latents, applies the ablations,
// and replaces x by
//
//	x + (decode(ablated latents) − decode(latents))
//
// i.e. the reconstruction plus the reconstruction error. Without ablations
// the activation is left bit-for-bit unchanged, so the spliced model is the
// original one; the difference is computed directly as
// std·Σ_i (new_i − old_i)·W_dec[:, i] over the ablated latents only.
//
// In the backward pass the hook is the identity, which is exact: the error
// term x − recon(x) makes d(out)/dx = I. LatentGrad gives the gradient with
// respect to the latents, treating them as an intermediate node.
//
// A Spliced is reused across forward passes but not concurrently: each
// pass overwrites Latents, Mean and Std.
type Spliced struct {
	AE        *Autoencoder
	Site      model.Site
	Ablations []LatentAblation

	// Latents is [B, T, NLatents] after the last forward pass, with the
	// ablations applied (what downstream computation saw). Positions past a
	// sequence's end hold the latents of padding.
	Latents *model.Tensor
	// Mean and Std are [B, T], each token's input statistics (nil unless
	// AE.Normalize).
	Mean, Std *model.Tensor

	codes Codes
}

// Splice attaches the autoencoder to loc of a layer. loc must hold one
// vector per token (mlp.post_act, resid.delta_mlp, resid.delta_attn, ...);
// the vector's size is checked against NInputs when the hook runs, or
// earlier with Check.
func (a *Autoencoder) Splice(layer int, loc model.Location) (*Spliced, error) {
	if _, err := model.ParseLocation(string(loc)); err != nil {
		return nil, invalid(err)
	}
	switch loc {
	case model.AttnQ, model.AttnK, model.AttnV, model.AttnVOut, model.AttnQKLogits, model.AttnQKProbs,
		model.AttnLnScale, model.MLPLnScale, model.LnFScale, model.Logits:
		return nil, invalidf("cannot splice an autoencoder into %s: it needs a location with one vector per token (e.g. %s, %s, %s)",
			loc, model.MLPPostAct, model.ResidDeltaMLP, model.ResidDeltaAtt)
	}
	if !loc.HasLayer() {
		layer = model.NoLayer
	} else if layer < 0 {
		return nil, invalidf("splicing into %s: negative layer %d", loc, layer)
	}
	return &Spliced{AE: a, Site: model.At(loc, layer)}, nil
}

// Check reports whether the site exists in a model of this configuration
// and has NInputs values per token.
func (s *Spliced) Check(cfg model.Config) error {
	if s.Site.Loc.HasLayer() && s.Site.Layer >= cfg.NLayer {
		return invalidf("autoencoder %s spliced into %s: the model has layers 0..%d", s.AE.Source, s.Site, cfg.NLayer-1)
	}
	shape := cfg.SiteShape(s.Site.Loc, 1)
	if n := shape[len(shape)-1]; n != s.AE.NInputs {
		return invalidf("autoencoder %s has %d inputs but %s has %d values per token", s.AE.Source, s.AE.NInputs, s.Site, n)
	}
	return nil
}

// Hook returns the model hook that runs the splice.
func (s *Spliced) Hook() model.Hook {
	return model.Hook{Site: s.Site, Fn: s.apply}
}

func (s *Spliced) apply(x *model.Tensor) error {
	a := s.AE
	if len(x.Shape) != 3 || x.Shape[2] != a.NInputs {
		return fmt.Errorf("autoencoder %s has %d inputs but %s has shape %v", a.Source, a.NInputs, s.Site, x.Shape)
	}
	B, T, in, L := x.Shape[0], x.Shape[1], a.NInputs, a.NLatents
	for _, ab := range s.Ablations {
		if ab.Latent < 0 || ab.Latent >= L || ab.Batch < All || ab.Batch >= B || ab.Token < All || ab.Token >= T {
			return fmt.Errorf("latent ablation %+v on %s is outside [%d sequences, %d tokens, %d latents]", ab, s.Site, B, T, L)
		}
	}
	if err := a.EncodeInto(&s.codes, x.Data, B*T); err != nil {
		return err
	}
	z := s.codes.Latents
	for _, ab := range s.Ablations {
		for b := range B {
			if ab.Batch != All && ab.Batch != b {
				continue
			}
			for t := range T {
				if ab.Token != All && ab.Token != t {
					continue
				}
				r := b*T + t
				old := z[r*L+ab.Latent]
				z[r*L+ab.Latent] = ab.Value
				delta := ab.Value - old
				if delta == 0 {
					continue
				}
				if a.Normalize {
					delta *= s.codes.Std[r]
				}
				axpy(delta, a.dec[ab.Latent*in:(ab.Latent+1)*in], x.Data[r*in:(r+1)*in])
			}
		}
	}
	s.Latents = &model.Tensor{Shape: []int{B, T, L}, Data: z}
	s.Mean, s.Std = nil, nil
	if a.Normalize {
		s.Mean = &model.Tensor{Shape: []int{B, T}, Data: s.codes.Mean}
		s.Std = &model.Tensor{Shape: []int{B, T}, Data: s.codes.Std}
	}
	// The next pass must not overwrite tensors a caller still holds.
	s.codes = Codes{work: s.codes.work}
	return nil
}

// LatentGrad maps the gradient at the site, g [B, T, NInputs] (from the
// backward pass of the same forward pass), to the gradient with respect to
// the latents [B, T, NLatents]: W_decᵀ·g, times the token's std for
// normalising autoencoders (std held constant: it depends on the input, not
// on the latents).
func (s *Spliced) LatentGrad(g *model.Tensor) (*model.Tensor, error) {
	a := s.AE
	if len(g.Shape) != 3 || g.Shape[2] != a.NInputs {
		return nil, fmt.Errorf("gradient at %s has shape %v, want [B, T, %d]", s.Site, g.Shape, a.NInputs)
	}
	B, T := g.Shape[0], g.Shape[1]
	if a.Normalize && (s.Std == nil || len(s.Std.Data) != B*T) {
		return nil, fmt.Errorf("gradient at %s: no input statistics of a [%d, %d] forward pass (run the forward pass with the hook first)", s.Site, B, T)
	}
	n, in, L := B*T, a.NInputs, a.NLatents
	out := model.NewTensor(B, T, L)
	blas32.Gemm(blas.NoTrans, blas.Trans, 1,
		blas32.General{Rows: n, Cols: in, Stride: in, Data: g.Data},
		blas32.General{Rows: L, Cols: in, Stride: in, Data: a.dec},
		0, blas32.General{Rows: n, Cols: L, Stride: L, Data: out.Data})
	if a.Normalize {
		for r := range n {
			sd := s.Std.Data[r]
			row := out.Data[r*L : (r+1)*L]
			for i := range row {
				row[i] *= sd
			}
		}
	}
	return out, nil
}

// PreActGrad is the gradient of latent i's pre-activation at token (b, t)
// with respect to the site's activation x, used to trace from a latent
// upstream. Without normalisation it is the encoder row. With it, the
// pre-activation is w·(x − mean(x))/(std + 1e-5) + const: the mean's
// dependence on x is exact (the row is centred) and std is held constant.
func (s *Spliced) PreActGrad(b, t, i int) ([]float32, error) {
	w, sd, err := s.latentVector(b, t, i, s.AE.EncoderRow)
	if err != nil || !s.AE.Normalize {
		return w, err
	}
	var mean float64
	for _, v := range w {
		mean += float64(v)
	}
	mean /= float64(len(w))
	inv := 1 / (float64(sd) + normEps)
	for j, v := range w {
		w[j] = float32((float64(v) - mean) * inv)
	}
	return w, nil
}

// WriteVector is what one unit of latent i adds to the site's activation at
// token (b, t): the decoder column, times the token's std for normalising
// autoencoders.
func (s *Spliced) WriteVector(b, t, i int) ([]float32, error) {
	w, sd, err := s.latentVector(b, t, i, s.AE.DecoderColumn)
	if err != nil || !s.AE.Normalize {
		return w, err
	}
	for j := range w {
		w[j] *= sd
	}
	return w, nil
}

// latentVector checks latent i and returns vec(i) (a copy of its encoder
// row or decoder column) and, for a normalising autoencoder, the std of
// token (b, t) that PreActGrad and WriteVector scale it by.
func (s *Spliced) latentVector(b, t, i int, vec func(int) []float32) ([]float32, float32, error) {
	a := s.AE
	if i < 0 || i >= a.NLatents {
		return nil, 0, fmt.Errorf("latent %d out of range [0, %d)", i, a.NLatents)
	}
	w := vec(i)
	if !a.Normalize {
		return w, 0, nil
	}
	sd, err := s.stat(b, t)
	if err != nil {
		return nil, 0, err
	}
	return w, sd, nil
}

func (s *Spliced) stat(b, t int) (float32, error) {
	if s.Std == nil {
		return 0, fmt.Errorf("%s: no input statistics yet (run a forward pass with the hook first)", s.Site)
	}
	B, T := s.Std.Shape[0], s.Std.Shape[1]
	if b < 0 || b >= B || t < 0 || t >= T {
		return 0, fmt.Errorf("%s: token (%d, %d) outside the last forward pass [%d, %d]", s.Site, b, t, B, T)
	}
	return s.Std.Data[b*T+t], nil
}
