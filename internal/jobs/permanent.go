package jobs

import "errors"

// permanentError marks a shard failure that no retry can fix (bad data at
// a byte offset, a spec the model cannot run, broken weights): the worker
// records it as final at once, so the job fails with the reason in
// seconds instead of after every back-off of the redelivery schedule.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as permanent (nil stays nil).
func Permanent(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was marked
// Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}
