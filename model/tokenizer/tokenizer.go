// Package tokenizer is GPT-2's byte-level BPE (the r50k_base ranks), offline.
//
// It wraps tiktoken-go with the vocabulary embedded by tiktoken-go-loader, so
// no network access is needed, and adds what a debugger needs on top: the
// one-token check for targets, and per-token display strings.
package tokenizer

import (
	"fmt"
	"strings"
	"sync"

	tiktoken "github.com/pkoukk/tiktoken-go"
	loader "github.com/pkoukk/tiktoken-go-loader"
)

// EndOfText is GPT-2's only special token.
const (
	EndOfText   = "<|endoftext|>"
	EndOfTextID = 50256
	VocabSize   = 50257
)

// Tokenizer encodes and decodes GPT-2 tokens. It is safe for concurrent use.
type Tokenizer struct {
	enc *tiktoken.Tiktoken
}

var (
	once   sync.Once
	shared *Tokenizer
	errNew error
)

// GPT2 returns the shared GPT-2 tokenizer (built once, about 50 ms).
func GPT2() (*Tokenizer, error) {
	once.Do(func() {
		tiktoken.SetBpeLoader(loader.NewOfflineLoader())
		enc, err := tiktoken.GetEncoding("r50k_base")
		if err != nil {
			errNew = fmt.Errorf("loading GPT-2 BPE ranks: %w", err)
			return
		}
		shared = &Tokenizer{enc: enc}
	})
	return shared, errNew
}

// Encode tokenizes text. "<|endoftext|>" in the text becomes the special token
// 50256, as in prompts typed into TDB.
func (t *Tokenizer) Encode(text string) []int {
	return t.enc.Encode(text, []string{EndOfText}, nil)
}

// EncodeOrdinary tokenizes text treating "<|endoftext|>" as plain text (for
// corpora, where documents are separated by the caller).
func (t *Tokenizer) EncodeOrdinary(text string) []int {
	return t.enc.EncodeOrdinary(text)
}

// Decode turns ids back into text. Byte sequences that are not valid UTF-8
// (a character split across tokens) are replaced by U+FFFD.
func (t *Tokenizer) Decode(ids []int) string {
	return strings.ToValidUTF8(t.enc.Decode(ids), "\uFFFD")
}

// Bytes returns the raw bytes of one token.
func (t *Tokenizer) Bytes(id int) []byte {
	return []byte(t.enc.Decode([]int{id}))
}

// Display returns one display string per token: the token's own bytes, with
// partial UTF-8 shown as U+FFFD.
func (t *Tokenizer) Display(ids []int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = strings.ToValidUTF8(t.enc.Decode([]int{id}), "\uFFFD")
	}
	return out
}

// SingleToken encodes s and requires exactly one token; TDB targets and
// distractors must be single tokens. "#N" names token id N directly.
func (t *Tokenizer) SingleToken(s string) (int, error) {
	if strings.HasPrefix(s, "#") {
		var id int
		if _, err := fmt.Sscanf(s, "#%d", &id); err != nil || id < 0 || id >= VocabSize {
			return 0, fmt.Errorf("token %q: want #N with 0 <= N < %d", s, VocabSize)
		}
		return id, nil
	}
	ids := t.Encode(s)
	if len(ids) != 1 {
		return 0, fmt.Errorf("%q is %d tokens %v, not exactly one (mind the leading space, e.g. %q)", s, len(ids), ids, " "+strings.TrimSpace(s))
	}
	return ids[0], nil
}
