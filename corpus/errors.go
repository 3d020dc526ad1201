package corpus

import "errors"

// ErrBadData marks an error in the corpus's content (a bad JSONL line, a
// token beyond the vocabulary, a file that changed since planning): reading
// the same bytes again fails the same way, so a pipeline does not retry it.
var ErrBadData = errors.New("corpus: bad data")

// badDataError keeps the message of err and matches ErrBadData.
type badDataError struct{ err error }

func (e badDataError) Error() string        { return e.err.Error() }
func (e badDataError) Unwrap() error        { return e.err }
func (e badDataError) Is(target error) bool { return target == ErrBadData }

func badData(err error) error { return badDataError{err} }

// ErrChanged marks a corpus file that is not what the plan saw (another
// size, modification time or block hash): a shard must never mix old and
// new content.
// It also matches ErrBadData (a retry cannot fix it).
var ErrChanged = errors.New("corpus changed since the job was planned")

type changedError struct{ err error }

func (e changedError) Error() string { return e.err.Error() }
func (e changedError) Unwrap() error { return e.err }
func (e changedError) Is(target error) bool {
	return target == ErrChanged || target == ErrBadData
}
