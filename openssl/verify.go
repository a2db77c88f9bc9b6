package openssl

import (
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"
	"sync"

	ossl "github.com/microsoft/go-crypto-openssl/openssl"
)

// maxKeys bounds the libcrypto public-key objects kept for reuse: far
// more than the keys a Store holds at once for its busiest merchants, and
// a few hundred kilobytes at most.
const maxKeys = 4096

// VerifyPKCS1v15 checks an RSASSA-PKCS1-v1_5 signature of a SHA-256
// digest through libcrypto, as rsa.VerifyPKCS1v15 does; other hashes are
// refused. It has the type of StoreOptions.VerifyPKCS1v15, for which it
// is meant: it keeps one libcrypto key object per *rsa.PublicKey it is
// given (the Store's own, the same pointer for as long as the Store holds
// the key), for the last 4096 keys, so that a verification does not
// rebuild the key. Keys given to it must not be modified afterwards, as
// the Store's never are. It loads libcrypto on first use (see Load); if
// that fails, every verification fails with the load error.
func VerifyPKCS1v15(pub *rsa.PublicKey, hash crypto.Hash, hashed, sig []byte) error {
	if hash != crypto.SHA256 {
		return fmt.Errorf("wechatpay/openssl: verify: hash %s refused; WeChat Pay signs with SHA-256 only", hashName(hash))
	}
	if pub == nil || pub.N == nil {
		return errors.New("wechatpay/openssl: verify: no public key")
	}
	k, err := keys.get(pub)
	if err != nil {
		return err
	}
	if len(sig) != pub.Size() {
		return rsa.ErrVerification
	}
	if err := ossl.VerifyRSAPKCS1v15(k, crypto.SHA256, hashed, sig); err != nil {
		return rsa.ErrVerification
	}
	return nil
}

// keyCache holds libcrypto's public-key objects by the *rsa.PublicKey
// they were made from. It holds those pointers strongly, so a pointer is
// never reused for another key while it is a map key. Lookups take no
// lock; inserts take mu and evict the oldest entry beyond maxKeys.
type keyCache struct {
	m sync.Map // *rsa.PublicKey → *ossl.PublicKeyRSA

	mu    sync.Mutex       // guards order and its insertions into m
	order []*rsa.PublicKey // insertion order, oldest first, at most maxKeys
}

var keys keyCache

func (c *keyCache) get(pub *rsa.PublicKey) (*ossl.PublicKeyRSA, error) {
	if k, ok := c.m.Load(pub); ok {
		return k.(*ossl.PublicKeyRSA), nil
	}
	if err := load(); err != nil {
		return nil, err
	}
	k, err := ossl.NewPublicKeyRSA(bigInt(pub.N), bigInt(big.NewInt(int64(pub.E))))
	if err != nil {
		return nil, fmt.Errorf("wechatpay/openssl: verify: libcrypto refused the public key: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m.Load(pub); ok { // another goroutine made it first
		return old.(*ossl.PublicKeyRSA), nil
	}
	if len(c.order) >= maxKeys {
		c.m.Delete(c.order[0])
		c.order[0] = nil
		c.order = c.order[1:]
	}
	c.m.Store(pub, k)
	c.order = append(c.order, pub)
	return k, nil
}

// len reports the number of keys held, for tests.
func (c *keyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.order)
}
