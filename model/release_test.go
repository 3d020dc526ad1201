package model

import (
	"context"
	"slices"
	"testing"
)

// TestReleaseReuse: a released Result's buffers are captured into by the
// next pass, and that pass's activations equal those of a pass on fresh
// memory (stale contents, padding included, never leak into them).
func TestReleaseReuse(t *testing.T) {
	m, err := NewRandom(Config{NLayer: 2, NHead: 2, DModel: 16, DMLP: 64, NCtx: 16, Vocab: 97, Eps: 1e-5}, 3)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	logits, mlp := At(Logits, NoLayer), At(MLPPostAct, 1)
	reqA := Request{Tokens: [][]int{{1, 2, 3, 4, 5, 6}, {7, 8, 9, 10, 11, 12}}, Capture: []Site{logits, mlp}}
	reqB := Request{Tokens: [][]int{{40, 41, 42, 43, 44, 45}, {50, 51}}, Capture: []Site{logits, mlp}}

	want, err := m.Forward(ctx, reqB) // fresh memory
	if err != nil {
		t.Fatal(err)
	}
	a, err := m.Forward(ctx, reqA)
	if err != nil {
		t.Fatal(err)
	}
	aLogits := &a.Acts[logits].Data[0]
	a.Release()
	if a.Acts != nil {
		t.Fatal("Acts still set after Release")
	}
	a.Release() // a second call does nothing
	got, err := m.Forward(ctx, reqB)
	if err != nil {
		t.Fatal(err)
	}
	if &got.Acts[logits].Data[0] != aLogits {
		t.Error("the second pass did not capture its logits into the released buffer")
	}
	for _, s := range []Site{logits, mlp} {
		if !slices.Equal(got.Acts[s].Data, want.Acts[s].Data) {
			t.Errorf("%s after Release differs from a pass on fresh memory", s)
		}
	}
	// Padding positions of row 1 are zero although the buffer held row 1's
	// real logits from reqA.
	pad := got.Acts[logits].Data[(1*6+2)*m.Vocab:]
	if slices.ContainsFunc(pad, func(v float32) bool { return v != 0 }) {
		t.Error("padding holds stale values")
	}
}
