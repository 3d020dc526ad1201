package model

import (
	"errors"
	"fmt"
)

// ErrInvalid marks input that can never succeed, however often it is
// retried: a checkpoint whose config.json or model.safetensors is malformed,
// truncated, misshapen or holds tensors the model does not use, and tokens
// outside the vocabulary or the context. Callers test for it with errors.Is
// (the CLI exits with code 2, the collation pipeline fails the job at once).
// The message of the error is unchanged by the marking.
var ErrInvalid = errors.New("invalid model input")

// invalidError marks err as ErrInvalid without changing its message.
type invalidError struct{ err error }

func (e invalidError) Error() string   { return e.err.Error() }
func (e invalidError) Unwrap() []error { return []error{e.err, ErrInvalid} }

// invalid marks err (nil stays nil).
func invalid(err error) error {
	if err == nil || errors.Is(err, ErrInvalid) {
		return err
	}
	return invalidError{err}
}

// ValidateTokens checks a batch of token sequences against a model shape:
// at least one sequence, none empty, none longer than the context, every id
// in [0, vocab). Model.Forward runs the same check; callers that read tokens
// from users or a corpus call it first to reject input before any work.
// Errors wrap ErrInvalid and name the sequence and position.
func ValidateTokens(cfg Config, tokens [][]int) error {
	if len(tokens) == 0 {
		return invalid(errors.New("empty batch: give at least one sequence of tokens"))
	}
	for b, seq := range tokens {
		if len(seq) == 0 {
			return invalid(fmt.Errorf("sequence %d is empty (an empty prompt has no tokens to run)", b))
		}
		if len(seq) > cfg.NCtx {
			return invalid(fmt.Errorf("sequence %d has %d tokens, more than the model's context of %d", b, len(seq), cfg.NCtx))
		}
		for i, tok := range seq {
			if tok < 0 || tok >= cfg.Vocab {
				return invalid(fmt.Errorf("sequence %d, position %d: token id %d is outside the vocabulary [0, %d)", b, i, tok, cfg.Vocab))
			}
		}
	}
	return nil
}

// ValidateContext checks a sequence length asked for by a user (tdb collate
// --n-ctx, tdb bench --seq): between 1 and the model's context. Errors wrap
// ErrInvalid.
func ValidateContext(cfg Config, n int) error {
	if n < 1 || n > cfg.NCtx {
		return invalid(fmt.Errorf("context length %d is outside 1..%d (the model's context)", n, cfg.NCtx))
	}
	return nil
}
