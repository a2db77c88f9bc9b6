package wechatpay

import (
	"crypto/cipher"
	"crypto/rsa"
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// trust is what a merchant's registration fixes for good: how to
// download its certificates and which keys it trusts besides them.
// Certificates obtained under one trust are never used under another.
type trust struct {
	id         string
	signer     *Signer
	aead       cipher.AEAD // nil: cannot download; shared by the merchants with one APIv3 key
	keyHash    [32]byte    // SHA-256 of the APIv3 key, to tell a change
	certURL    string
	base       http.RoundTripper
	userAgent  string
	publicKeys map[string]*rsa.PublicKey // immutable
}

// same reports whether certificates obtained under a may be kept under b:
// same APIv3 key, endpoint, Base and public keys.
func (a *trust) same(b *trust) bool {
	if a.keyHash != b.keyHash || a.certURL != b.certURL || !sameRoundTripper(a.base, b.base) || len(a.publicKeys) != len(b.publicKeys) {
		return false
	}
	for id, k := range a.publicKeys {
		if o := b.publicKeys[id]; o == nil || !o.Equal(k) {
			return false
		}
	}
	return true
}

// sameRoundTripper compares two Bases without panicking on values that are
// not comparable (which count as different).
func sameRoundTripper(a, b http.RoundTripper) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && ta.Comparable() && a == b
}

// merchant is one registration of a merchant ID: its fixed trust, the
// history of its downloads, and the set of certificates it holds now.
// A new registration supersedes it; one with the same trust takes over
// its history and its set as they are (the same values, not copies).
type merchant struct {
	trust
	gen  uint64   // registrations of the Store so far, to name its download flight
	hist *history // shared with the registrations that took it over

	// set is the certificate set this registration holds, read without
	// a lock by every hit; nil when none is held (never obtained,
	// evicted, void). Written only under Store.ringMu, as is ring.
	set        atomic.Pointer[certSet]
	ring       int         // index in Store.ring, -1 when not there
	superseded atomic.Bool // set under Store.ringMu
}

func newMerchant(t trust, gen uint64) *merchant {
	return &merchant{trust: t, gen: gen, hist: newHistory(), ring: -1}
}

func (m *merchant) flightKey() string { return m.id + "\x00" + strconv.FormatUint(m.gen, 10) }

// never is the monotonic time of an event that has not happened.
const never = time.Duration(-1 << 62)

// history is what downloads did for a merchant, what decides the next
// one (see mayDownload), and what Status reports. Counters and monotonic
// times are atomics read on their own; the rest is read together under mu.
type history struct {
	lastAttempt      atomic.Int64 // monotonic time.Duration of the last attempt counted by the rate limit
	lastSuccess      atomic.Int64 // monotonic time of the last success
	lastEvictAttempt atomic.Int64 // monotonic time of the last download an eviction allowed
	downloads        atomic.Int64
	rateLimited      atomic.Int64
	cacheRefused     atomic.Int64 // cache entries refused by the checks
	evictions        atomic.Int64 // sets evicted by the LRU
	refreshing       atomic.Bool  // a background refresh is running
	evicted          atomic.Bool  // the set was evicted since it was obtained

	mu             sync.Mutex // guards what follows
	lastErr        error
	failures       int // consecutive failed downloads
	attemptWall    time.Time
	successWall    time.Time
	publicKeyOnly  bool
	voidedAt       time.Time // when WeChat Pay last answered RESOURCE_NOT_EXISTS (here, or elsewhere by the Cache)
	evictedSerials []string  // the serials of the set the LRU evicted
}

func newHistory() *history {
	h := &history{}
	h.lastAttempt.Store(int64(never))
	h.lastSuccess.Store(int64(never))
	h.lastEvictAttempt.Store(int64(never))
	return h
}

// attempt records the start of a download (or cache read) at wall and
// mono; counted says whether the rate limit counts it.
func (h *history) attempt(wall time.Time, mono time.Duration, counted bool) {
	if counted {
		h.lastAttempt.Store(int64(mono))
	}
	h.mu.Lock()
	h.attemptWall = wall
	h.mu.Unlock()
}

func (h *history) failed(err error) {
	h.mu.Lock()
	h.lastErr = err
	h.failures++
	h.mu.Unlock()
}

// succeeded records a set obtained at wall time wall (WeChat Pay's, for a
// cache entry) and monotonic time mono.
func (h *history) succeeded(wall time.Time, mono time.Duration) {
	h.evicted.Store(false)
	h.mu.Lock()
	h.lastErr, h.failures, h.evictedSerials = nil, 0, nil
	h.publicKeyOnly = false
	h.successWall = wall
	h.mu.Unlock()
	h.lastSuccess.Store(int64(mono))
}

// void records RESOURCE_NOT_EXISTS at wall time at, and reports whether
// the certificates held, obtained before, are void.
func (h *history) void(at time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if at.After(h.voidedAt) {
		h.voidedAt = at
	}
	stale := !h.successWall.After(h.voidedAt)
	if stale {
		h.publicKeyOnly = true
	}
	return stale
}

func (h *history) voided() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.voidedAt
}

// wasEvicted records the eviction of a set holding serials.
func (h *history) wasEvicted(serials []string) {
	h.evicted.Store(true)
	h.evictions.Add(1)
	h.mu.Lock()
	h.evictedSerials = serials
	h.mu.Unlock()
}
