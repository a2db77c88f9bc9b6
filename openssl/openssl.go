// Package openssl signs, decrypts and verifies WeChat Pay's RSA through
// OpenSSL's libcrypto, for platforms whose CPU goes into signing: on the
// machines we measured (see BENCHMARKS.md), an RSA-2048 signature costs
// about a third of crypto/rsa's CPU, so one core makes two to three times
// more signed calls. The signatures are byte for byte those of crypto/rsa
// (PKCS#1 v1.5 is deterministic); only the speed differs.
//
// Use it for a merchant key held in the process (an *rsa.PrivateKey):
//
//	key, err := openssl.NewSigner(privateKey) // loads libcrypto.so.3 on first use
//	if err != nil {
//		return err // names the library and the package that provides it
//	}
//	cfg.PrivateKey = key // signs requests; decrypts sensitive fields too
//	store, err := wechatpay.NewStore(wechatpay.StoreOptions{VerifyPKCS1v15: openssl.VerifyPKCS1v15})
//
// The Store's VerifyPKCS1v15 makes every Transport and callback middleware
// that verifies with that Store check signatures through OpenSSL, with
// one OpenSSL key object per stored key.
//
// libcrypto is loaded at run time (dlopen), from the library Load names or
// DefaultLibrary. It builds with cgo or without (CGO_ENABLED=0); either way
// the program needs the shared library where it runs: Debian and Ubuntu
// ship it in package libssl3. The default build of package wechatpay uses
// none of this: it stays pure Go.
//
// A key in a KMS or HSM signs where it lives; this package is not for it.
package openssl

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"

	ossl "github.com/microsoft/go-crypto-openssl/openssl"
	"github.com/microsoft/go-crypto-openssl/osslsetup"
)

// DefaultLibrary is the libcrypto loaded when Load was not called first:
// OpenSSL 3's, which Debian's and Ubuntu's package libssl3 provides.
const DefaultLibrary = "libcrypto.so.3"

// libraryPackage names what provides libcrypto, for the error that says
// it could not be loaded.
const libraryPackage = "Debian and Ubuntu ship it in package libssl3 (apt-get install libssl3)"

var (
	loadOnce sync.Once
	loadErr  error
	loaded   string
)

// Load loads libcrypto from library, a name dlopen searches for (such as
// libcrypto.so.3) or a path; empty means DefaultLibrary. Only the first
// call loads: later ones, and NewSigner and VerifyPKCS1v15, return its
// result, failure included, for the life of the process. Call it before
// anything else of this package to load another library than the default.
func Load(library string) error {
	if library == "" {
		library = DefaultLibrary
	}
	loadOnce.Do(func() { loadLibrary(library) })
	if loadErr == nil && loaded != library {
		return fmt.Errorf("wechatpay/openssl: libcrypto is already loaded from %q; cannot load %q as well", loaded, library)
	}
	return loadErr
}

// load loads DefaultLibrary unless a library was loaded already.
func load() error {
	loadOnce.Do(func() { loadLibrary(DefaultLibrary) })
	return loadErr
}

func loadLibrary(library string) {
	loaded = library
	if err := osslsetup.Init(library); err != nil {
		loadErr = fmt.Errorf("wechatpay/openssl: cannot load libcrypto %q (%s): %w", library, libraryPackage, err)
	}
}

// Version returns the version text of the libcrypto loaded, such as
// "OpenSSL 3.0.19 27 Jan 2026", loading DefaultLibrary if none is.
func Version() (string, error) {
	if err := load(); err != nil {
		return "", err
	}
	return osslsetup.VersionText(), nil
}

// A Signer is a merchant's RSA private key held by libcrypto: a
// crypto.Signer for WeChat Pay's request signatures (RSASSA-PKCS1-v1_5
// with SHA-256, nothing else) and a crypto.Decrypter for the sensitive
// fields WeChat Pay encrypts for the merchant (RSA-OAEP with SHA-1). It is
// safe for concurrent use, and neither its String nor its GoString prints
// the key.
type Signer struct {
	pub  *rsa.PublicKey
	priv *ossl.PrivateKeyRSA
}

var (
	_ crypto.Signer    = (*Signer)(nil)
	_ crypto.Decrypter = (*Signer)(nil)
)

// NewSigner copies key into libcrypto, loading it first if needed (see
// Load). key is not modified. The error of a libcrypto that cannot be
// loaded names the library and the package that provides it.
func NewSigner(key *rsa.PrivateKey) (*Signer, error) {
	if key == nil || key.N == nil || key.D == nil {
		return nil, errors.New("wechatpay/openssl: NewSigner needs an RSA private key")
	}
	if len(key.Primes) != 2 {
		return nil, fmt.Errorf("wechatpay/openssl: RSA key has %d primes; want 2", len(key.Primes))
	}
	if err := load(); err != nil {
		return nil, err
	}
	p, q := key.Primes[0], key.Primes[1]
	one := big.NewInt(1)
	// The CRT values, computed here rather than by key.Precompute, which
	// would write to the caller's key.
	dp := new(big.Int).Mod(key.D, new(big.Int).Sub(p, one))
	dq := new(big.Int).Mod(key.D, new(big.Int).Sub(q, one))
	qinv := new(big.Int).ModInverse(q, p)
	if qinv == nil {
		return nil, errors.New("wechatpay/openssl: RSA key is not valid: its primes are not coprime")
	}
	priv, err := ossl.NewPrivateKeyRSA(bigInt(key.N), bigInt(big.NewInt(int64(key.E))), bigInt(key.D),
		bigInt(p), bigInt(q), bigInt(dp), bigInt(dq), bigInt(qinv))
	if err != nil {
		return nil, fmt.Errorf("wechatpay/openssl: libcrypto refused the RSA key: %w", err)
	}
	pub := key.PublicKey
	s := &Signer{pub: &pub, priv: priv}
	// libcrypto takes the numbers as given: a key whose parts do not
	// belong together would sign wrongly. One signature, checked by
	// crypto/rsa, proves they do.
	d := sha256.Sum256([]byte("wechatpay/openssl: key check"))
	sig, err := s.Sign(nil, d[:], crypto.SHA256)
	if err == nil {
		err = rsa.VerifyPKCS1v15(&pub, crypto.SHA256, d[:], sig)
	}
	if err != nil {
		return nil, errors.New("wechatpay/openssl: RSA key is not valid: libcrypto's signature with it does not verify with its public key")
	}
	return s, nil
}

// Public returns the key's *rsa.PublicKey.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// Sign signs a SHA-256 digest with RSASSA-PKCS1-v1_5, the only scheme
// WeChat Pay's APIv3 uses; rand is not used (the scheme is
// deterministic). Any other hash, and PSS options, are refused with an
// error that names them.
func (s *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts == nil {
		return nil, errors.New("wechatpay/openssl: sign: no hash given; WeChat Pay signs SHA-256 digests only")
	}
	if _, ok := opts.(*rsa.PSSOptions); ok {
		return nil, errors.New("wechatpay/openssl: sign: RSA-PSS refused; WeChat Pay signs with RSASSA-PKCS1-v1_5 and SHA-256 only")
	}
	if h := opts.HashFunc(); h != crypto.SHA256 {
		return nil, fmt.Errorf("wechatpay/openssl: sign: hash %s refused; WeChat Pay signs with SHA-256 only", hashName(h))
	}
	if len(digest) != crypto.SHA256.Size() {
		return nil, fmt.Errorf("wechatpay/openssl: sign: digest is %d bytes; a SHA-256 digest is 32", len(digest))
	}
	sig, err := ossl.SignRSAPKCS1v15(s.priv, crypto.SHA256, digest)
	if err != nil {
		return nil, fmt.Errorf("wechatpay/openssl: sign: %w", err)
	}
	return sig, nil
}

// Decrypt decrypts a ciphertext WeChat Pay encrypted with the merchant's
// certificate: opts must be *rsa.OAEPOptions with Hash crypto.SHA1 (and
// MGFHash zero or SHA-1), the only scheme WeChat Pay uses for sensitive
// fields. Anything else, PKCS#1 v1.5 decryption included, is refused with
// an error that names it. The error of a failed decryption says nothing
// about the plaintext.
func (s *Signer) Decrypt(_ io.Reader, ciphertext []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	o, ok := opts.(*rsa.OAEPOptions)
	if !ok {
		return nil, fmt.Errorf("wechatpay/openssl: decrypt: options %T refused; WeChat Pay encrypts fields with RSA-OAEP and SHA-1 only", opts)
	}
	if o.Hash != crypto.SHA1 || (o.MGFHash != 0 && o.MGFHash != crypto.SHA1) {
		return nil, fmt.Errorf("wechatpay/openssl: decrypt: RSA-OAEP with %s (MGF1 %s) refused; WeChat Pay uses SHA-1 for both", hashName(o.Hash), hashName(o.MGFHash))
	}
	pt, err := ossl.DecryptRSAOAEP(ossl.NewSHA1(), ossl.NewSHA1(), s.priv, ciphertext, o.Label)
	if err != nil {
		return nil, errors.New("wechatpay/openssl: decrypt: RSA-OAEP decryption failed (wrong key or altered ciphertext)")
	}
	return pt, nil
}

// String describes the signer without its key.
func (s *Signer) String() string {
	if s == nil || s.pub == nil {
		return "openssl.Signer{}"
	}
	return fmt.Sprintf("openssl.Signer{RSA-%d, key: [redacted]}", s.pub.N.BitLen())
}

// GoString is String, so that %#v does not print the key either.
func (s *Signer) GoString() string { return s.String() }

func hashName(h crypto.Hash) string {
	if h == 0 {
		return "none"
	}
	return h.String()
}

// bigInt converts a non-negative big.Int to libcrypto's word slice.
func bigInt(x *big.Int) ossl.BigInt {
	w := x.Bits()
	b := make(ossl.BigInt, len(w))
	for i, v := range w {
		b[i] = uint(v)
	}
	return b
}
