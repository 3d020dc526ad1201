//go:build race

package model

// raceEnabled: the race detector's shadow memory inflates RSS, so memory
// bounds are only checked without it.
const raceEnabled = true
