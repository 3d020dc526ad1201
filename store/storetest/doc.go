// Package storetest is the conformance suite for store.Store: one table of
// behaviours that every backend (local filesystem, memory, Azure Blob via
// Azurite) must pass, so code tested on one backend holds on the others.
// Blobs and Copy read and copy the blobs under a prefix, for tests of code
// that writes to a store. It imports store and the standard library only.
package storetest
