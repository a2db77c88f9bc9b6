package wechatpay

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// storedKey is one platform certificate as the Store keeps it: what
// verification and encryption need, and the certificate's DER for whoever
// asks for the certificate itself (parsed then, not kept parsed: the
// parsed form is most of a merchant's memory). Immutable.
type storedKey struct {
	pub       *rsa.PublicKey
	serial    string    // wire.CertSerial, formatted once
	notBefore time.Time // of the certificate
	notAfter  time.Time // the earlier of the certificate's NotAfter and the listed expire_time
	der       []byte
}

func newStoredKey(c *x509.Certificate, pub *rsa.PublicKey, notAfter time.Time) *storedKey {
	return &storedKey{pub: pub, serial: wire.CertSerial(c), notBefore: c.NotBefore, notAfter: notAfter, der: bytes.Clone(c.Raw)}
}

// certificate parses the key's certificate, which was parsed and checked
// when it was obtained.
func (k *storedKey) certificate() (*x509.Certificate, error) { return x509.ParseCertificate(k.der) }

// certSet is one merchant's platform certificates, as one download, one
// cache entry or AddCertificates gave them. It is immutable once held,
// but for ref. Validity is decided on the monotonic clock: each key's
// wall-clock expiry is converted into a monotonic deadline when the set
// is built, so that a hit reads one cheap clock (see Store.PublicKey).
// A wall clock stepped later is seen when the set is next replaced, at
// most RefreshInterval later.
type certSet struct {
	keys      []*storedKey    // latest expiry first, then by serial
	deadlines []time.Duration // monotonic: keys[i] is valid until deadlines[i]
	source    string          // "download", "cache", "added"
	obtained  time.Time       // wall time the set was obtained (for Status)
	refreshAt time.Duration   // monotonic time a hit starts a background refresh
	ref       atomic.Bool     // used since the CLOCK hand last passed (see Store.hold)
}

// neverDue is a refreshAt that never comes.
const neverDue = time.Duration(math.MaxInt64)

// newCertSet builds a set of keys obtained at wall time wall, which is
// monotonic time mono.
func newCertSet(keys []*storedKey, source string, wall time.Time, mono, refreshAt time.Duration) *certSet {
	keys = slices.Clone(keys)
	slices.SortFunc(keys, func(a, b *storedKey) int {
		if c := b.notAfter.Compare(a.notAfter); c != 0 {
			return c
		}
		return strings.Compare(b.serial, a.serial)
	})
	keys = slices.CompactFunc(keys, func(a, b *storedKey) bool { return a.serial == b.serial })
	cs := &certSet{keys: keys, deadlines: make([]time.Duration, len(keys)), source: source, obtained: wall, refreshAt: refreshAt}
	for i, k := range keys {
		cs.deadlines[i] = mono + k.notAfter.Sub(wall)
	}
	return cs
}

// find returns the index of the key with serial exactly as given, or -1.
// A set holds a few keys: a scan beats hashing.
func (cs *certSet) find(serial string) int {
	for i, k := range cs.keys {
		if k.serial == serial {
			return i
		}
	}
	return -1
}

// valid returns the key with serial if it is valid at monotonic time mono.
func (cs *certSet) valid(serial string, mono time.Duration) *storedKey {
	if i := cs.find(serial); i >= 0 && mono < cs.deadlines[i] {
		return cs.keys[i]
	}
	return nil
}

// newest returns the valid key with the latest expiry at wall time now
// and monotonic time mono, or nil.
func (cs *certSet) newest(now time.Time, mono time.Duration) *storedKey {
	for i, k := range cs.keys {
		if !now.Before(k.notBefore) && mono < cs.deadlines[i] {
			return k
		}
	}
	return nil
}

// serials returns the serials of the set.
func (cs *certSet) serials() []string {
	out := make([]string, len(cs.keys))
	for i, k := range cs.keys {
		out[i] = k.serial
	}
	return out
}

// touch marks the set used, for the CLOCK hand. It writes only when the
// bit is clear, so that hits on a hot set share its cache line.
func (cs *certSet) touch() {
	if !cs.ref.Load() {
		cs.ref.Store(true)
	}
}
