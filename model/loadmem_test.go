package model

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"tdb/internal/memstat"
)

// Loading reads every tensor straight into its final slice: a checkpoint
// never needs twice its size in memory (gpt2-xl is 6 GB). Checked on a
// ~200 MB random checkpoint loaded by a child process, whose peak RSS must
// stay well below twice the file size.
func TestLoadPeakMemory(t *testing.T) {
	if dir := os.Getenv("TDB_TEST_LOAD_DIR"); dir != "" { // the child
		m, err := Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("PEAK " + strconv.FormatFloat(memstat.PeakRSSMiB(), 'f', 1, 64) + "\n")
		_ = m.WTE[0]
		return
	}
	if testing.Short() || raceEnabled {
		t.Skip("writes a 200 MB checkpoint; memory is not measurable under -race")
	}
	cfg := Config{NLayer: 8, NHead: 8, DModel: 512, DMLP: 2048, NCtx: 1024, Vocab: 50257, Eps: 1e-5}
	m, err := NewRandom(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	m = nil
	st, err := os.Stat(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	fileMiB := float64(st.Size()) / (1 << 20)
	cmd := exec.Command(os.Args[0], "-test.run", "^TestLoadPeakMemory$", "-test.v")
	cmd.Env = append(os.Environ(), "TDB_TEST_LOAD_DIR="+dir, "GOGC=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var peak float64
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "PEAK "); ok {
			peak, _ = strconv.ParseFloat(v, 64)
		}
	}
	t.Logf("checkpoint %.0f MiB, peak RSS while loading %.0f MiB", fileMiB, peak)
	if peak <= 0 || peak > 1.35*fileMiB+60 {
		t.Errorf("loading a %.0f MiB checkpoint peaked at %.0f MiB of RSS", fileMiB, peak)
	}
}
