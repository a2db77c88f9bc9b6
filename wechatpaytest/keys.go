package wechatpaytest

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
)

// poolSize bounds how many RSA-2048 keys the package ever keeps. Generating
// one takes tens of milliseconds, far more under the race detector, and
// test suites create thousands of sandbox merchants; so keys are generated
// lazily up to poolSize and then handed out again, round-robin.
const poolSize = 12

// keyPool is the only package-level state: sandbox key pairs shared by all
// servers. Everything that must be unique (serials, IDs, APIv3 keys) is
// generated per use.
var keyPool struct {
	mu   sync.Mutex
	keys []*rsa.PrivateKey
	next int
}

// takeKey returns an RSA-2048 key that is not one of avoid. While the pool
// is not full it generates a new key, without holding the pool's lock. Once
// the pool is full it returns the next pooled key not in avoid, or, if all
// of them are to be avoided, a fresh key that is not pooled.
func takeKey(avoid ...*rsa.PrivateKey) *rsa.PrivateKey {
	keyPool.mu.Lock()
	if n := len(keyPool.keys); n >= poolSize {
		for range n {
			k := keyPool.keys[keyPool.next]
			keyPool.next = (keyPool.next + 1) % n
			if !slices.Contains(avoid, k) {
				keyPool.mu.Unlock()
				return k
			}
		}
		keyPool.mu.Unlock()
		return generateKey()
	}
	keyPool.mu.Unlock()

	k := generateKey() // new, so not in avoid
	keyPool.mu.Lock()
	if len(keyPool.keys) < poolSize {
		keyPool.keys = append(keyPool.keys, k)
	}
	keyPool.mu.Unlock()
	return k
}

func generateKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("wechatpaytest: generate RSA key: " + err.Error())
	}
	return k
}

// newSerial returns a random positive 160-bit certificate serial whose
// first byte is 0x10 to 0x7F, so that its WeChat Pay notation
// (upper-case hex of the big-endian bytes) is always 40 characters long
// and never starts with "0", like WeChat Pay's serials: a client that
// formats the serial number itself, with or without leading zeros,
// names the same serial.
func newSerial() *big.Int {
	var b [20]byte
	rand.Read(b[:])
	b[0] = 0x10 + b[0]%0x70
	return new(big.Int).SetBytes(b[:])
}

// newSerialHex returns a random serial in WeChat Pay notation.
func newSerialHex() string { return fmt.Sprintf("%X", newSerial().Bytes()) }

// randomText returns n random characters from the base32 alphabet
// (A–Z, 2–7), drawn from crypto/rand.
func randomText(n int) string {
	var s string
	for len(s) < n {
		s += rand.Text()
	}
	return s[:n]
}

// randomDigits returns n random decimal digits.
func randomDigits(n int) string {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
	v, err := rand.Int(rand.Reader, limit)
	if err != nil {
		panic("wechatpaytest: random: " + err.Error())
	}
	d := v.Text(10)
	return strings.Repeat("0", n-len(d)) + d
}
