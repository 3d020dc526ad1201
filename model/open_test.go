package model

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestRandomConfig(t *testing.T) {
	if _, ok, err := RandomConfig("gpt2"); ok || err != nil {
		t.Errorf("gpt2 is not random: %v %v", ok, err)
	}
	if c, ok, err := RandomConfig("random:gpt2"); !ok || err != nil || c.NLayer != 12 {
		t.Errorf("random:gpt2 = %+v %v %v", c, ok, err)
	}
	if c, ok, err := RandomConfig("random:tiny"); !ok || err != nil || c != TinyConfig {
		t.Errorf("random:tiny = %+v %v %v", c, ok, err)
	}
	if _, ok, err := RandomConfig("random:gpt5"); !ok || !errors.Is(err, ErrUnknownPreset) {
		t.Errorf("random:gpt5 should be a random name with ErrUnknownPreset, got %v %v", ok, err)
	}
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	var warn bytes.Buffer
	m, err := Open(ctx, "random:tiny", &warn)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Random || m.Config != TinyConfig || !strings.Contains(warn.String(), "RANDOM") {
		t.Errorf("random:tiny: random %v, config %+v, warning %q", m.Random, m.Config, warn.String())
	}
	again, err := Open(ctx, "random:tiny", nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.WTE[17] != m.WTE[17] {
		t.Error("random:tiny is not the same weights twice (seed must be fixed)")
	}

	// A folder written by Save opens as it was, and is announced as random.
	dir := t.TempDir()
	if err := m.Save(dir); err != nil {
		t.Fatal(err)
	}
	warn.Reset()
	loaded, err := Open(ctx, dir, &warn)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Random || loaded.WTE[17] != m.WTE[17] || !strings.Contains(warn.String(), "RANDOM") {
		t.Errorf("folder: random %v, warning %q", loaded.Random, warn.String())
	}

	if _, err := Open(ctx, "random:gpt5", nil); !errors.Is(err, ErrUnknownPreset) {
		t.Errorf("random:gpt5: %v", err)
	}
	if _, err := Open(ctx, "./no/such/folder", nil); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing folder: %v", err)
	}
}

// KnownShape knows OpenAI's GPT-2 repositories by name, in every spelling
// the hub accepts, and nothing else.
func TestKnownShape(t *testing.T) {
	for name, want := range map[string]string{
		"gpt2": "gpt2", "gpt2-xl": "gpt2-xl", "openai-community/gpt2-medium": "gpt2-medium",
		"openai-community/gpt2-large@main": "gpt2-large", "gpt2-xl@refs/pr/1": "gpt2-xl",
	} {
		cfg, ok := KnownShape(name)
		if !ok || cfg != Presets[want] {
			t.Errorf("KnownShape(%q) = %+v, %v; want the %s preset", name, cfg, ok, want)
		}
	}
	for _, name := range []string{"someone/gpt2-xl", "distilgpt2", "random:gpt2", "./models/gpt2", "", "openai-community/gpt2-huge"} {
		if _, ok := KnownShape(name); ok {
			t.Errorf("KnownShape(%q) is known, want not", name)
		}
	}
}
