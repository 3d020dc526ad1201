// Package azuritetest starts the Azurite Azure Blob emulator for tests, so
// that code using Azure Blob is tested against the real Blob REST API rather
// than a mock. Start needs only the standard library; CreateContainer uses
// the Azure Blob SDK, which the tests of Azure code import anyway.
//
// The azurite-blob binary is found through $TDB_AZURITE (a path to the
// binary), then node_modules/.bin/azurite-blob under .ci/node or the module
// root (searched upwards from the working directory), then $PATH. Install it
// with:
//
//	npm install --prefix .ci/node azurite@3.37.0
//
// Without Azurite, Start skips the test with a loud message, except when the
// CI environment variable is set: in CI a missing dependency is a failure.
package azuritetest
