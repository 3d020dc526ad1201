package jobs

import (
	"strings"
	"testing"
)

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"24GB", 24e9}, {"24GiB", 24 << 30}, {"24gib", 24 << 30}, {"1.5G", 15e8}, {"512MiB", 512 << 20},
		{"25769803776", 25769803776}, {" 2 TB ", 2e12}, {"0", 0}, {"100k", 1e5}, {"3Ki", 3072},
	} {
		got, err := ParseBytes(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "GB", "24XB", "-1GB", "1e400", "x24"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) accepted", bad)
		}
	}
}

func TestMachineMemory(t *testing.T) {
	if m := MachineMemory(); m < 64<<20 {
		t.Errorf("MachineMemory() = %d: this machine has no memory?", m)
	}
}

// sizedSpec is a spec of n targets of the same size (one per layer).
func sizedSpec(n, components int, budget int64) JobSpec {
	s := DefaultSpec()
	s.WorkerMemory = budget
	s.Sizing = &Sizing{ModelBytes: 500e6, ForwardBytes: 50e6}
	for l := range n {
		s.Sizing.Targets = append(s.Sizing.Targets, TargetSize{TargetRef: TargetRef{Location: "mlp.post_act", Layer: n - 1 - l}, Components: components, BatchBytes: 4e6})
	}
	return s
}

// The plan takes the fewest groups that fit, balanced, in layer order, and
// every target exactly once.
func TestPlanGroups(t *testing.T) {
	const tokens, shards = 1 << 21, 16
	s := sizedSpec(12, 3072, 0)
	if p, err := s.PlanGroups(tokens, shards); err != nil || p.Groups != nil {
		t.Fatalf("no budget: %v, %v; want one group (nil)", p.Groups, err)
	}
	s = sizedSpec(12, 3072, 1<<40)
	p, err := s.PlanGroups(tokens, shards)
	if err != nil || len(p.Groups) != 1 || len(p.Groups[0]) != 12 {
		t.Fatalf("ample budget: %d groups, %v; want one of 12", len(p.Groups), err)
	}
	fixed := s.FixedBytes(s.Sizing, tokens)
	one := s.TargetBytes(s.Sizing.Targets[0], tokens, shards)
	// Room for exactly 5 targets: 12 targets need 3 groups, balanced 4/4/4.
	s.WorkerMemory = int64(float64(fixed+5*one)/PlanFill) + 1
	p, err = s.PlanGroups(tokens, shards)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Groups) != 3 {
		t.Fatalf("%d groups, want 3", len(p.Groups))
	}
	layer := 0
	for i, g := range p.Groups {
		if len(g) != 4 {
			t.Errorf("group %d has %d targets, want 4 (balanced)", i, len(g))
		}
		if p.Bytes[i] != fixed+int64(len(g))*one || float64(p.Bytes[i]) > PlanFill*float64(s.WorkerMemory) {
			t.Errorf("group %d: %d bytes, want %d within %d", i, p.Bytes[i], fixed+int64(len(g))*one, s.WorkerMemory)
		}
		for _, r := range g {
			if r.Layer != layer {
				t.Errorf("group %d: layer %d, want %d (layer order)", i, r.Layer, layer)
			}
			layer++
		}
	}
	// Too small for one target: refused, with the budget that would do.
	s.WorkerMemory = fixed + one/2
	_, err = s.PlanGroups(tokens, shards)
	if err == nil || !strings.Contains(err.Error(), "give at least") || !strings.Contains(err.Error(), "layer 0 ") {
		t.Fatalf("budget below one target: %v", err)
	}
	need, perr := ParseBytes(strings.Fields(err.Error()[strings.Index(err.Error(), "give at least"):])[3])
	if perr != nil {
		t.Fatal(perr)
	}
	s.WorkerMemory = need
	if p, err := s.PlanGroups(tokens, shards); err != nil || len(p.Groups) != 12 {
		t.Errorf("the budget the error names: %d groups, %v; want 12 of one", len(p.Groups), err)
	}
}

// Neither the budget nor the sizing changes the job id: they change no
// byte of the dataset.
func TestWorkerMemoryNotInID(t *testing.T) {
	a := sizedSpec(3, 10, 0)
	b := sizedSpec(3, 10, 24e9)
	if a.DefaultID() != b.DefaultID() || a.DefaultID() != func() JobSpec { a.Sizing = nil; return a }().DefaultID() {
		t.Error("worker memory or sizing changes the job id")
	}
	if _, err := Normalize(JobSpec{Dataset: "d", Model: "m", Corpus: "c", Locations: []string{"x"}, WorkerMemory: -1}); err == nil {
		t.Error("negative worker memory accepted")
	}
}
