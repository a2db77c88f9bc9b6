//go:build !boringcrypto

package wechatpay

// boringBuild: GOEXPERIMENT=boringcrypto, which cannot run Go's FIPS 140-3
// modes (its module is BoringCrypto's own).
const boringBuild = false
