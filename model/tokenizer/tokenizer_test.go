package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

type refEntry struct {
	Text           string `json:"text"`
	IDs            []int  `json:"ids"`
	AllowedSpecial bool   `json:"allowed_special"`
}

func TestReferenceIDs(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "fixtures", "hf-gpt2", "tokenizer_reference.json")
	if _, err := os.Stat(path); err != nil {
		path = filepath.Join("testdata", "tokenizer_reference.json")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading reference: %v", err)
	}
	var refs []refEntry
	if err := json.Unmarshal(b, &refs); err != nil {
		t.Fatal(err)
	}
	if len(refs) < 5 {
		t.Fatalf("only %d reference entries", len(refs))
	}
	tok, err := GPT2()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		var got []int
		if r.AllowedSpecial {
			got = tok.Encode(r.Text)
		} else {
			got = tok.EncodeOrdinary(r.Text)
		}
		if !slices.Equal(got, r.IDs) {
			t.Errorf("%q: got %v want %v", r.Text, got, r.IDs)
		}
		if dec := tok.Decode(r.IDs); dec != r.Text {
			t.Errorf("decode %v: got %q want %q", r.IDs, dec, r.Text)
		}
	}
}

func TestSpecialAndDisplay(t *testing.T) {
	tok, err := GPT2()
	if err != nil {
		t.Fatal(err)
	}
	ids := tok.Encode("<|endoftext|>Paris, France")
	if ids[0] != EndOfTextID {
		t.Fatalf("special token not recognised: %v", ids)
	}
	if plain := tok.EncodeOrdinary("<|endoftext|>"); len(plain) == 1 {
		t.Fatalf("ordinary encoding treated <|endoftext|> as special: %v", plain)
	}
	disp := tok.Display(tok.EncodeOrdinary("héllo 🙂"))
	joined := ""
	for _, d := range disp {
		joined += d
	}
	if !slices.Contains(disp, "\uFFFD") && joined != "héllo 🙂" {
		t.Fatalf("display strings %q", disp)
	}
	// The emoji is split into byte-level tokens: at least one is a partial character.
	emoji := tok.Display(tok.EncodeOrdinary("🙂"))
	if len(emoji) < 2 || emoji[0] != "\uFFFD" {
		t.Fatalf("partial UTF-8 not shown as U+FFFD: %q", emoji)
	}
}

func TestSingleToken(t *testing.T) {
	tok, _ := GPT2()
	if id, err := tok.SingleToken(" Canada"); err != nil || id != 3340 {
		t.Fatalf("' Canada' = %d, %v", id, err)
	}
	if _, err := tok.SingleToken("Canada is big"); err == nil {
		t.Fatal("multi-token string accepted")
	}
	if id, err := tok.SingleToken("#42"); err != nil || id != 42 {
		t.Fatalf("#42 = %d, %v", id, err)
	}
	if _, err := tok.SingleToken("#99999"); err == nil {
		t.Fatal("out-of-range id accepted")
	}
}

func BenchmarkEncode(b *testing.B) {
	tok, _ := GPT2()
	text := ""
	for len(text) < 1<<16 {
		text += "When Mary and John went to the store, John gave a drink to Mary. It's 3.14 — naïve café 🙂\n"
	}
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.EncodeOrdinary(text)
	}
}
