package collate

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"tdb/dataset"
)

// A NaN or infinite activation is refused with an error naming the
// component, token and window, never folded into statistics or records
// (where it used to panic the merge in big.Float.SetFloat64).
func TestNonFiniteActivationsRefused(t *testing.T) {
	cfg := DefaultConfig()
	for _, C := range []int{3, 16} { // the column path and the row (AVX2) path
		for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
			a, err := NewLayerAccumulator("mlp.post_act", 1, C, cfg)
			if err != nil {
				t.Fatal(err)
			}
			T := 4
			acts := make([]float32, T*C)
			for i := range acts {
				acts[i] = float32(i%7) * 0.25
			}
			if err := a.AddWindow(dataset.Source{Doc: 1}, []int32{1, 2, 3, 4}, acts); err != nil {
				t.Fatal(err)
			}
			acts[2*C+C-1] = bad // token 2, last component
			err = a.AddWindow(dataset.Source{Doc: 9, Offset: 64}, []int32{1, 2, 3, 4}, acts)
			if !errors.Is(err, ErrNonFinite) {
				t.Fatalf("C=%d %v: err %v, want ErrNonFinite", C, bad, err)
			}
			want := []string{"component " + itoa(C-1), "token 2", "document 9", "offset 64", "mlp.post_act layer 1"}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			// The good window is intact and the accumulator still encodes.
			if a.Records() != 1 {
				t.Fatalf("records %d after the refused window, want 1", a.Records())
			}
			var sb strings.Builder
			if err := a.Encode(&sb); err != nil {
				t.Fatal(err)
			}
		}
	}
	h, _ := NewLayerAccumulator("attn.heads", 0, 2, cfg)
	T := 3
	vals := make([]float32, T*T*2)
	vals[(2*T+1)*2+1] = float32(math.NaN()) // query 2, key 1, head 1
	err := h.AddPairWindow(dataset.Source{Doc: 4}, []int32{1, 2, 3}, vals, nil)
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "component 1 at token 2") {
		t.Fatalf("pair window: %v", err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
