package autoencoder

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tdb/model"
)

// Tensors a loader does not know were silently ignored: a weight the
// computation then lacks. They are refused, named, in both formats.
func TestUnexpectedTensorsRefused(t *testing.T) {
	w := randomWeights(7, 16, 32)
	pt := writePT(t, w, ptOptions{extra: "encoder.bias"})
	dir := writeSAELens(t, w, map[string]any{"d_in": 16, "d_sae": 32}, nil)
	// a threshold in a ReLU SAELens file is a JumpReLU read as ReLU
	relu := writeSAELens(t, w, map[string]any{"d_in": 16, "d_sae": 32}, w.latentBias)
	for _, c := range []struct{ path, want string }{
		{pt, `unexpected entries "encoder.bias"`},
		{relu, `unexpected tensors "threshold"`},
	} {
		_, err := Load(context.Background(), c.path, Options{})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
			t.Errorf("Load %s: %v, want ErrInvalid mentioning %q", c.path, err, c.want)
		}
		if _, err := Inspect(c.path); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Inspect %s: %v, want ErrInvalid mentioning %q", c.path, err, c.want)
		}
	}
	// the full set of OpenAI entries and a plain SAELens folder load
	if _, err := Load(context.Background(), writePT(t, w, ptOptions{extra: "latents_mean_square"}), Options{}); err != nil {
		t.Error(err)
	}
	if _, err := Load(context.Background(), dir, Options{}); err != nil {
		t.Error(err)
	}
}

// Inspect reads headers only: it agrees with Load on shape and activation,
// and succeeds on a file whose tensor data is corrupted (which Load
// refuses), so it never read the data.
func TestInspectReadsHeadersOnly(t *testing.T) {
	w := randomWeights(8, 16, 32)
	w.activation, w.k, w.postact = "TopK", 4, "ReLU"
	good := encodePT(w, ptOptions{})
	bad := append([]byte(nil), good...)
	i := bytes.Index(bad, binary.LittleEndian.AppendUint32(nil, math.Float32bits(w.enc[3])))
	bad[i] ^= 0x55
	path := filepath.Join(t.TempDir(), "ae.pt")
	os.WriteFile(path, bad, 0o644)
	if _, err := Load(context.Background(), path, Options{}); err == nil {
		t.Fatal("Load read a corrupted storage")
	}
	info, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	want := Info{Path: path, Format: "openai", NInputs: 16, NLatents: 32, Activation: TopK, K: 4, Layer: model.NoLayer}
	if info != want {
		t.Errorf("Inspect: %+v, want %+v", info, want)
	}
	dir := writeSAELens(t, w, map[string]any{"d_in": 16, "d_sae": 32, "hook_name": "blocks.1.hook_mlp_out", "architecture": "jumprelu"}, w.latentBias)
	a, err := Load(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if info, err := Inspect(dir); err != nil || info != a.Info() || info.Location != model.ResidDeltaMLP || info.Layer != 1 {
		t.Errorf("Inspect SAELens: %+v %v, Load: %+v", info, err, a.Info())
	}
	for _, p := range []string{filepath.Join(t.TempDir(), "missing.pt"), writeFile(t, "x.pt", good[:len(good)-100]), writeFile(t, "y.pt", []byte("hello"))} {
		if _, err := Inspect(p); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), p) {
			t.Errorf("Inspect %s: %v, want ErrInvalid naming the file", p, err)
		}
	}
}

func writeFile(t *testing.T, name string, b []byte) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseSpec(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Spec
	}{
		{"ae.pt@3", Spec{"ae.pt", "", 3}},
		{"ae.pt@3:resid.delta_mlp", Spec{"ae.pt", model.ResidDeltaMLP, 3}},
		{"ae.pt@mlp.post_act/99", Spec{"ae.pt", model.MLPPostAct, 99}},
		{"/x/a@b.pt@1", Spec{"/x/a@b.pt", "", 1}},
		{"mlp_post_act_v4", Spec{"mlp_post_act_v4", "", model.NoLayer}},
	} {
		got, err := ParseSpec(c.in)
		if err != nil || got != c.want {
			t.Errorf("%q: %+v %v, want %+v", c.in, got, err, c.want)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"ae.pt@", `layer ""`}, {"@3", "no path"}, {"ae.pt@x", `layer "x"`}, {"ae.pt@-1", `layer "-1"`},
		{"ae.pt@mlp.bogus/2", "unknown location"}, {"ae.pt@2:mlp.bogus", "unknown location"}, {" ", "empty"},
	} {
		if _, err := ParseSpec(c.in); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want ErrInvalid mentioning %q", c.in, err, c.want)
		}
	}
}

func TestPlace(t *testing.T) {
	cfg := model.Config{NLayer: 2, NHead: 2, DModel: 8, DMLP: 32, NCtx: 8, Vocab: 10, Eps: 1e-5}
	mlp := Info{Path: "m.pt", NInputs: 32, NLatents: 64, Layer: model.NoLayer}
	resid := Info{Path: "r.pt", NInputs: 8, NLatents: 64, Layer: model.NoLayer}
	for _, c := range []struct {
		in    Info
		loc   model.Location
		layer int
		want  model.Site
	}{
		{mlp, "", 1, model.At(model.MLPPostAct, 1)}, // the default for d_mlp inputs
		{resid, model.ResidDeltaAtt, 0, model.At(model.ResidDeltaAtt, 0)},
		{Info{Path: "s", NInputs: 8, Location: model.ResidDeltaMLP, Layer: 1}, "", 1, model.At(model.ResidDeltaMLP, 1)},
	} {
		got, err := c.in.Place(cfg, c.loc, c.layer)
		if err != nil || got != c.want {
			t.Errorf("%+v %s/%d: %v %v, want %v", c.in, c.loc, c.layer, got, err, c.want)
		}
	}
	for _, c := range []struct {
		in    Info
		loc   model.Location
		layer int
		want  string
	}{
		{mlp, model.MLPPostAct, 99, "layer 99 is out of range: the model has layers 0..1"},
		{resid, "", 0, "does not say where"},
		{resid, model.MLPPostAct, 0, "has 8 inputs but mlp.post_act/0 has 32 values per token"},
		{mlp, model.AttnQKProbs, 0, "one vector per token"},
	} {
		if _, err := c.in.Place(cfg, c.loc, c.layer); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v %s/%d: %v, want ErrInvalid mentioning %q", c.in, c.loc, c.layer, err, c.want)
		}
	}
}

func TestOpenMarksBadInputInvalid(t *testing.T) {
	for _, ref := range []string{"./missing.pt", "mlp_post_act_v9/3", "nonsense"} {
		if _, err := Open(context.Background(), ref, 2, Options{}, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", ref, err)
		}
	}
}
