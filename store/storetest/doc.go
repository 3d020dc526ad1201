// Package storetest is the conformance suite for store.Store: one table of
// behaviours that every backend (local filesystem, memory, Azure Blob via
// Azurite) must pass, so code tested on one backend holds on the others. It
// imports store and the standard library only.
package storetest
