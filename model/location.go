package model

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Location names an activation of the forward pass (tdb-semantics §1).
type Location string

// The hook points. Shapes are per sequence; tensors carry a leading batch
// dimension [B, T, ...].
const (
	ResidPostEmb  Location = "resid.post_emb"   // [T, d], no layer
	AttnLnScale   Location = "attn_ln.scale"    // [T, 1]
	AttnLnOut     Location = "attn_ln.out"      // [T, d]: ln_1 output, the attention input
	AttnQ         Location = "attn.q"           // [T, H, d_head]
	AttnK         Location = "attn.k"           // [T, H, d_head]
	AttnV         Location = "attn.v"           // [T, H, d_head]
	AttnQKLogits  Location = "attn.qk_logits"   // [T, T, H], masked entries -Inf
	AttnQKProbs   Location = "attn.qk_probs"    // [T, T, H], indexed [query, key, head]
	AttnVOut      Location = "attn.v_out"       // [T, H, d_head]
	ResidDeltaAtt Location = "resid.delta_attn" // [T, d]
	ResidPostAttn Location = "resid.post_attn"  // [T, d]
	MLPLnScale    Location = "mlp_ln.scale"     // [T, 1]
	MLPLnOut      Location = "mlp_ln.out"       // [T, d]: ln_2 output, the MLP input
	MLPPreAct     Location = "mlp.pre_act"      // [T, d_mlp]
	MLPPostAct    Location = "mlp.post_act"     // [T, d_mlp]: "MLP neurons"
	ResidDeltaMLP Location = "resid.delta_mlp"  // [T, d]
	ResidPostMLP  Location = "resid.post_mlp"   // [T, d]
	LnFScale      Location = "resid.ln_f.scale" // [T, 1], no layer
	LnFOut        Location = "resid.ln_f.out"   // [T, d], no layer: input of the unembedding
	Logits        Location = "logits"           // [T, vocab], no layer
)

// allLocations lists every hook point in forward order within a layer.
var allLocations = []Location{
	ResidPostEmb, AttnLnScale, AttnLnOut, AttnQ, AttnK, AttnV, AttnQKLogits, AttnQKProbs, AttnVOut,
	ResidDeltaAtt, ResidPostAttn, MLPLnScale, MLPLnOut, MLPPreAct, MLPPostAct, ResidDeltaMLP, ResidPostMLP,
	LnFScale, LnFOut, Logits,
}

// NoLayer is the layer of locations outside the blocks.
const NoLayer = -1

// HasLayer reports whether the location exists once per block.
func (l Location) HasLayer() bool {
	return l != ResidPostEmb && l != LnFScale && l != LnFOut && l != Logits
}

// Valid reports whether l is a known location.
func (l Location) Valid() bool { return slices.Contains(allLocations, l) }

// Site is one location of one layer (Layer is NoLayer for layerless ones).
type Site struct {
	Loc   Location
	Layer int
}

// At makes a site.
func At(loc Location, layer int) Site { return Site{loc, layer} }

// String is "<location>/<layer>" or "<location>" (the safetensors key).
func (s Site) String() string {
	if !s.Loc.HasLayer() {
		return string(s.Loc)
	}
	return string(s.Loc) + "/" + strconv.Itoa(s.Layer)
}

// ParseLocation checks a location name and suggests the right spelling.
func ParseLocation(name string) (Location, error) {
	l := Location(strings.TrimSpace(name))
	if l.Valid() {
		return l, nil
	}
	names := make([]string, len(allLocations))
	for i, x := range allLocations {
		names[i] = string(x)
	}
	return "", fmt.Errorf("unknown location %q (known: %s)", name, strings.Join(names, ", "))
}

// ParseSite parses "<location>/<layer>" or a layerless location.
func ParseSite(s string) (Site, error) {
	name, layerStr, hasLayer := strings.Cut(s, "/")
	loc, err := ParseLocation(name)
	if err != nil {
		return Site{}, err
	}
	if !loc.HasLayer() {
		if hasLayer {
			return Site{}, fmt.Errorf("location %s has no layer", loc)
		}
		return Site{loc, NoLayer}, nil
	}
	if !hasLayer {
		return Site{}, fmt.Errorf("location %s needs a layer (%s/<layer>)", loc, loc)
	}
	layer, err := strconv.Atoi(layerStr)
	if err != nil || layer < 0 {
		return Site{}, fmt.Errorf("bad layer %q in %q", layerStr, s)
	}
	return Site{loc, layer}, nil
}

// check validates a site against the model's shape.
func (c Config) check(s Site) error {
	if !s.Loc.Valid() {
		_, err := ParseLocation(string(s.Loc))
		return err
	}
	if !s.Loc.HasLayer() {
		if s.Layer != NoLayer {
			return fmt.Errorf("location %s has no layer (got layer %d)", s.Loc, s.Layer)
		}
		return nil
	}
	if s.Layer < 0 || s.Layer >= c.NLayer {
		return fmt.Errorf("layer %d of %s is out of range: the model has layers 0..%d", s.Layer, s.Loc, c.NLayer-1)
	}
	return nil
}

// SiteShape is the per-sequence shape of a site's tensor for T tokens.
func (c Config) SiteShape(loc Location, T int) []int {
	switch loc {
	case AttnLnScale, MLPLnScale, LnFScale:
		return []int{T, 1}
	case AttnQ, AttnK, AttnV, AttnVOut:
		return []int{T, c.NHead, c.DHead()}
	case AttnQKLogits, AttnQKProbs:
		return []int{T, T, c.NHead}
	case MLPPreAct, MLPPostAct:
		return []int{T, c.DMLP}
	case Logits:
		return []int{T, c.Vocab}
	}
	return []int{T, c.DModel}
}
