package wire

import (
	"crypto/md5"
	"crypto/sha1"
	"fmt"
	"sync"
)

// Go's FIPS 140-only mode (GODEBUG=fips140=only) refuses SHA-1 and MD5:
// their functions panic, and crypto/rsa returns an error for OAEP with
// SHA-1. WeChat Pay requires them in places and offers no alternative:
// RSA-OAEP with SHA-1 for sensitive fields (docs/protocol.md §7), SHA-1 for the
// hash of bill files (§2.5), MD5 for APIv2's sign_type MD5. The library
// checks before using them and returns an error that says so, rather than
// a panic or an error that blames the key. GODEBUG=fips140=on (the FIPS
// module, with other algorithms still allowed) and GOEXPERIMENT=
// boringcrypto use them normally.
// SHA1Refused and MD5Refused report whether Go's FIPS 140-only mode
// refuses SHA-1 and MD5 in this process.
var (
	SHA1Refused = sync.OnceValue(func() bool { return panics(func() { sha1.Sum(nil) }) })
	MD5Refused  = sync.OnceValue(func() bool { return panics(func() { md5.Sum(nil) }) })
)

func panics(f func()) (panicked bool) {
	defer func() { panicked = recover() != nil }()
	f()
	return false
}

// ErrFIPSOnly says that what needs algo cannot run in FIPS 140-only mode.
func ErrFIPSOnly(what, algo string) error {
	return fmt.Errorf("wechatpay: %s: WeChat Pay requires %s here, which Go's FIPS 140-only mode (GODEBUG=fips140=only) refuses; "+
		"run with GODEBUG=fips140=on (the FIPS module, other algorithms allowed) to use it", what, algo)
}
