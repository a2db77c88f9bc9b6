//go:build !boringcrypto

package apiv2_test

// boringBuild: GOEXPERIMENT=boringcrypto, which cannot run Go's FIPS 140-3
// modes.
const boringBuild = false
