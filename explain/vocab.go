package explain

import (
	"strings"
	"sync"
	"unicode"

	"tdb/model/tokenizer"
)

// Vocab is what explainers and simulators know of tokens: each id's text
// and its lexical class, and the reverse lookup from text to ids.
type Vocab struct {
	text   []string
	class  []tokenClass
	byText map[string][]int32
	// byWord maps a token's trimmed, lower-cased text to its ids (the
	// fallback lookup for free-text explanations).
	byWord map[string][]int32
}

// tokenClass is a lexical class the builtin explainer can name.
type tokenClass uint8

const (
	classNone tokenClass = iota
	classCapitalized
	classNumber
	classPunct
	classNewline
	nClasses
)

var classNames = [nClasses]string{"", "a capitalized word", "a number", "punctuation", "a line break"}

// NewVocab builds a vocabulary from one text per token id.
func NewVocab(texts []string) *Vocab {
	v := &Vocab{text: texts, class: make([]tokenClass, len(texts)), byText: map[string][]int32{}, byWord: map[string][]int32{}}
	for id, t := range texts {
		v.class[id] = classify(t)
		v.byText[t] = append(v.byText[t], int32(id))
		if w := strings.ToLower(strings.TrimSpace(t)); w != "" {
			v.byWord[w] = append(v.byWord[w], int32(id))
		}
	}
	return v
}

var (
	gpt2Once  sync.Once
	gpt2Vocab *Vocab
	gpt2Err   error
)

// GPT2Vocab returns the GPT-2 vocabulary (built once).
func GPT2Vocab() (*Vocab, error) {
	gpt2Once.Do(func() {
		tok, err := tokenizer.GPT2()
		if err != nil {
			gpt2Err = err
			return
		}
		ids := make([]int, tokenizer.VocabSize)
		for i := range ids {
			ids[i] = i
		}
		gpt2Vocab = NewVocab(tok.Display(ids))
	})
	return gpt2Vocab, gpt2Err
}

// Text returns the text of token id ("" for ids outside the vocabulary).
func (v *Vocab) Text(id int32) string {
	if id < 0 || int(id) >= len(v.text) {
		return ""
	}
	return v.text[id]
}

// Size is the number of token ids.
func (v *Vocab) Size() int { return len(v.text) }

func (v *Vocab) classOf(id int32) tokenClass {
	if id < 0 || int(id) >= len(v.class) {
		return classNone
	}
	return v.class[id]
}

// classify puts a token's text into a lexical class.
func classify(t string) tokenClass {
	s := strings.TrimLeft(t, " ")
	if s == "" {
		return classNone
	}
	if strings.Trim(s, "\n\r") == "" {
		return classNewline
	}
	letters, digits, puncts, upperFirst := 0, 0, 0, false
	for i, r := range s {
		switch {
		case unicode.IsLetter(r):
			letters++
			if i == 0 && unicode.IsUpper(r) {
				upperFirst = true
			}
		case unicode.IsDigit(r):
			digits++
		case unicode.IsPunct(r) || unicode.IsSymbol(r):
			puncts++
		default:
			return classNone
		}
	}
	switch {
	case letters > 1 && digits == 0 && puncts == 0 && upperFirst:
		return classCapitalized
	case digits > 0 && letters == 0 && puncts == 0:
		return classNumber
	case puncts > 0 && letters == 0 && digits == 0:
		return classPunct
	}
	return classNone
}
