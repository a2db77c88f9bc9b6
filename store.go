package wechatpay

import (
	"context"
	"crypto"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
	"golang.org/x/sync/singleflight"
)

// maxRefreshInterval: WeChat Pay lists a new certificate 24 h before using
// it and advises refreshing more often than every 12 h (docs/protocol.md §4.4).
const maxRefreshInterval = 12 * time.Hour

// StoreOptions configures a Store. The zero value gives the defaults.
type StoreOptions struct {
	// Size is the number of merchants whose certificate sets the Store
	// holds at once. Zero means DefaultStoreSize (4096: some 8.5 MB when
	// full, about 2.1 KB per merchant with one certificate). The set of the least recently
	// used merchant is evicted whole and downloaded again when next
	// needed: an eviction allows one download per MinRefreshInterval
	// beyond the rate limit, for a serial the evicted set held. Size the
	// Store for the merchants active within RefreshInterval;
	// MerchantStatus.Evictions and EventStoreTooSmall say when
	// it is too small.
	Size int
	// RefreshInterval is the age after which a merchant's certificates are
	// refreshed in the background while the cached ones keep serving.
	// Zero means DefaultRefreshInterval (6 h); it must be under 12 h.
	RefreshInterval time.Duration
	// MinRefreshInterval is the least time between two downloads for one
	// merchant caused by lookups (whose serials callers, and attackers
	// posting to a callback URL, control), failed downloads included. Zero
	// means 1 minute.
	MinRefreshInterval time.Duration
	// FetchTimeout bounds one download. It runs detached from the
	// cancellation of the request that caused it, so that one caller giving
	// up does not fail the others waiting on it. Zero means 10 s.
	FetchTimeout time.Duration
	// Roots, if set, is the pool platform certificates must chain to.
	Roots *x509.CertPool

	// Cache, if set, keeps each certificate download as WeChat Pay sent it
	// (DirCache across restarts, package redisstore across a fleet), under
	// the merchant ID. Before a download, the Store looks there; what it
	// finds goes through every check of a fresh download (the AEAD with
	// the merchant's APIv3 key, the certificates, their validity now, the
	// download's own signature), and is used only if it is newer than the
	// set the Store holds (or it holds none) and was signed by WeChat Pay
	// less than a day ago. An entry that fails the checks is counted
	// (MerchantStatus.CacheRefused), deleted and replaced by a download.
	// Every successful download is put there. A Cache with a TryLock
	// method (see Cache) also serves as the fleet's download lock. The
	// lookup of a cached key never touches the Cache.
	Cache Cache
	// CacheErrorHandler, if set, receives each failure of Cache (or of
	// its lock) and each cache entry refused by the checks (those errors
	// wrap ErrCertificateDownload). The Store carries on as if it had no
	// cache: these never fail a lookup. Every call to Cache is bounded by
	// 500 ms, and after a failure the Store leaves it alone for a second,
	// so that a cache that is down or hanging delays few lookups. It must
	// not block.
	CacheErrorHandler func(err error)
	// Events, if set, receives an event for each certificate download
	// (EventCertificateDownload, with its outcome, duration and serials),
	// each failed background refresh (EventRefreshFailed) and each lookup
	// refused a download by MinRefreshInterval (EventRateLimited), and
	// one of Kind EventStoreTooSmall for each set evicted less than
	// RefreshInterval after it was obtained (Size is too small).
	Events EventHook
	// VerifyPKCS1v15, if set, checks the signatures of responses and
	// callbacks verified with this Store's keys, in place of
	// rsa.VerifyPKCS1v15 (the nil default): the hash is always SHA-256.
	// It is called with the Store's own *rsa.PublicKey values, the same
	// pointer for as long as a key is held, so a backend may keep one
	// object of its own per key. It must return an error for any
	// signature that does not verify. Package
	// github.com/wxpaykit/wechatpay/openssl provides one over libcrypto.
	VerifyPKCS1v15 func(pub *rsa.PublicKey, hash crypto.Hash, hashed, sig []byte) error
}

// A Store holds the keys that verify WeChat Pay signatures: platform
// certificates, which it downloads, decrypts and checks by itself per
// merchant, and configured WeChat Pay public keys (PUB_KEY_ID_...). It is
// safe for concurrent use by any number of Transports, Verifiers and
// merchants. The zero value is not usable: call NewStore.
//
// A merchant's certificates are held as one set, as WeChat Pay lists them,
// for at most Size merchants at once. A serial that is not in the set
// causes one download for that merchant, however many callers ask at
// once, and at most one per MinRefreshInterval whatever the serials asked
// for, the certificates' expiry or failures (and one more for a serial of
// a set evicted to make room); only the first download, Refresh and the
// background refresh escape that limit. A set older than RefreshInterval
// keeps serving while one download runs in the background. Intervals are
// measured on the monotonic clock. Answers come only from the merchant's
// current registration. Call Close to wait for background downloads.
type Store struct {
	// The invariants, relied on everywhere below:
	//  1. merchants maps an ID to its current registration; a registration
	//     replaced is marked superseded, and what it obtains afterwards is
	//     discarded. Answers come from current() alone: the current
	//     registration's set, read without a lock.
	//  2. Every set held is checked as a fresh download is (fetch.go),
	//     whatever its source; a Cache only ever makes a Store trust less.
	//  3. At most Size registrations hold a set: ring lists them, and a
	//     set is stored or removed only under ringMu.
	//  4. Downloads for a merchant run one at a time (singleflight, per
	//     registration), detached from the callers, bounded by
	//     FetchTimeout; whether a lookup may start one is decided inside
	//     the flight by mayDownload alone.
	//  5. No lock is held across I/O or user code, Cache calls included,
	//     and every Cache call is bounded by the Store itself.
	merchants sync.Map // merchant ID → *merchant
	group     singleflight.Group
	gen       atomic.Uint64 // registrations so far
	opts      StoreOptions

	// ringMu guards ring, hand, each merchant's set and ring index
	// (their writes), and the superseding of a registration.
	ringMu sync.Mutex
	ring   []*merchant // the registrations holding a set: the CLOCK list
	hand   int

	aeadMu sync.Mutex               // guards aeads
	aeads  map[[32]byte]cipher.AEAD // by SHA-256 of the APIv3 key, shared

	mu     sync.Mutex // guards closed and the Add side of bg
	closed bool
	bg     sync.WaitGroup

	cache *boundedCache // nil without StoreOptions.Cache

	start time.Time            // monotonic origin
	now   func() time.Time     // test hook: wall clock; nil means time.Now
	mono  func() time.Duration // test hook: monotonic time since start, set with now
}

var _ KeySource = (*Store)(nil)

// NewStore returns a Store configured by opts.
func NewStore(opts StoreOptions) (*Store, error) {
	if opts.Size == 0 {
		opts.Size = DefaultStoreSize
	}
	if opts.Size < 0 {
		return nil, fmt.Errorf("wechatpay: store: negative Size %d", opts.Size)
	}
	if opts.RefreshInterval == 0 {
		opts.RefreshInterval = DefaultRefreshInterval
	}
	if opts.RefreshInterval < 0 || opts.RefreshInterval >= maxRefreshInterval {
		return nil, fmt.Errorf("wechatpay: store: RefreshInterval %s must be positive and under %s", opts.RefreshInterval, maxRefreshInterval)
	}
	if opts.MinRefreshInterval == 0 {
		opts.MinRefreshInterval = DefaultMinRefreshInterval
	}
	if opts.MinRefreshInterval < 0 {
		return nil, fmt.Errorf("wechatpay: store: negative MinRefreshInterval %s", opts.MinRefreshInterval)
	}
	if opts.FetchTimeout == 0 {
		opts.FetchTimeout = DefaultFetchTimeout
	}
	if opts.FetchTimeout < 0 {
		return nil, fmt.Errorf("wechatpay: store: negative FetchTimeout %s", opts.FetchTimeout)
	}
	s := &Store{opts: opts, start: time.Now(), aeads: map[[32]byte]cipher.AEAD{}}
	if opts.Cache != nil {
		s.cache = &boundedCache{c: opts.Cache, onError: opts.CacheErrorHandler, mono: s.monoNow}
	}
	return s, nil
}

// clock returns the wall time, for validity, and the monotonic time since
// the store was made, for intervals.
func (s *Store) clock() (time.Time, time.Duration) {
	if s.now != nil {
		return s.now(), s.mono()
	}
	t := time.Now()
	return t, t.Sub(s.start)
}

func (s *Store) wall() time.Time {
	t, _ := s.clock()
	return t
}

// monoNow is the monotonic clock alone: time.Since on a time with a
// monotonic reading reads one clock (the runtime's nanotime, a vDSO call
// on Linux), writes nothing shared, and costs about half of time.Now.
func (s *Store) monoNow() time.Duration {
	if s.mono != nil {
		return s.mono()
	}
	return time.Since(s.start)
}

// Register tells the store how to download platform certificates for
// cfg.MerchantID (signing with its key, decrypting with its APIv3 key) and
// which WeChat Pay public key it has. Registering a merchant again
// replaces its registration: downloads still running for the old one are
// discarded when they finish, and the cached certificates are kept only if
// the APIv3 key, BaseURL, Base and public key are unchanged. Register is
// called by NewTransport; call it yourself for a Verifier of your own.
func (s *Store) Register(cfg Config) error {
	aead, u, err := cfg.check()
	if err != nil {
		return err
	}
	t := trust{
		id:        cfg.MerchantID,
		signer:    &Signer{MerchantID: cfg.MerchantID, CertificateSerial: cfg.CertificateSerial, Key: cfg.PrivateKey},
		aead:      s.sharedAEAD(cfg.APIv3Key, aead),
		keyHash:   sha256.Sum256([]byte(cfg.APIv3Key)),
		certURL:   certificatesURL(u),
		base:      cfg.Base,
		userAgent: cfg.UserAgent,
	}
	if cfg.PublicKey != nil {
		t.publicKeys = map[string]*rsa.PublicKey{cfg.PublicKeyID: cfg.PublicKey}
	}
	s.replace(cfg.MerchantID, newMerchant(t, s.gen.Add(1)))
	return nil
}

// sharedAEAD returns the AEAD of the Store's merchants with this APIv3
// key, or makes aead that one: a platform's sub-merchants share one key
// and need one cipher state.
func (s *Store) sharedAEAD(key string, aead cipher.AEAD) cipher.AEAD {
	if aead == nil {
		return nil
	}
	h := sha256.Sum256([]byte(key))
	s.aeadMu.Lock()
	defer s.aeadMu.Unlock()
	if a := s.aeads[h]; a != nil {
		return a
	}
	s.aeads[h] = aead
	return aead
}

// replace makes m the merchant's registration (nil: none) and supersedes
// the old one. When the trust did not change, m takes over the old
// history and set as they are.
func (s *Store) replace(id string, m *merchant) {
	s.ringMu.Lock()
	defer s.ringMu.Unlock()
	var old *merchant
	if v, ok := s.merchants.Load(id); ok {
		old = v.(*merchant)
	}
	if m != nil {
		if old != nil && old.same(&m.trust) {
			m.hist = old.hist
			if cs := old.set.Load(); cs != nil {
				m.set.Store(cs)
				m.ring, s.ring[old.ring] = old.ring, m
				old.ring = -1
			}
		}
		s.merchants.Store(id, m)
	} else {
		s.merchants.Delete(id)
	}
	if old != nil {
		old.superseded.Store(true)
		s.releaseLocked(old)
	}
}

// Unregister forgets a merchant and its cached certificates. A download
// still running for it is discarded when it finishes.
func (s *Store) Unregister(merchantID string) { s.replace(merchantID, nil) }

func (s *Store) merchant(id string) (*merchant, error) {
	v, ok := s.merchants.Load(id)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownMerchant, wire.Truncate(id, 32))
	}
	return v.(*merchant), nil
}

// current returns id's current registration and the set it holds (nil
// if none): the one answer to "which certificates may verify for id now".
func (s *Store) current(id string) (*merchant, *certSet) {
	v, ok := s.merchants.Load(id)
	if !ok {
		return nil, nil
	}
	m := v.(*merchant)
	return m, m.set.Load()
}

// hold makes cs m's set, unless m was superseded, and keeps the sets held
// within Size by evicting with a CLOCK hand: each set has a bit that hits
// set and the hand clears; the first set found clear is evicted, so a
// set used since the hand last passed gets a second chance, and a new
// set must be used to earn one. It is LRU's bound with an approximation
// of its order, and it needs no write on a hit beyond setting a bit that
// is clear.
func (s *Store) hold(m *merchant, cs *certSet) bool {
	type victim struct {
		m  *merchant
		cs *certSet
	}
	var evicted []victim
	s.ringMu.Lock()
	if m.superseded.Load() {
		s.ringMu.Unlock()
		return false
	}
	if old := m.set.Load(); old != nil {
		cs.ref.Store(true) // a set replacing one in use (a refresh) is in use
	}
	m.set.Store(cs)
	if m.ring < 0 {
		// In behind the hand, so that the hand reaches it last: a new
		// set gets a whole turn to be used.
		m.ring = len(s.ring)
		s.ring = append(s.ring, m)
		if h := s.hand; h < m.ring {
			o := s.ring[h]
			s.ring[h], s.ring[m.ring] = m, o
			o.ring, m.ring = m.ring, h
			s.hand = h + 1
		} else {
			s.hand = 0
		}
	}
	for len(s.ring) > s.opts.Size {
		if s.hand >= len(s.ring) {
			s.hand = 0
		}
		v := s.ring[s.hand]
		vs := v.set.Load()
		if v == m || vs.ref.Swap(false) {
			s.hand++
			continue
		}
		s.releaseLocked(v)
		evicted = append(evicted, victim{v, vs})
	}
	s.ringMu.Unlock()
	for _, v := range evicted {
		s.evicted(v.m, v.cs)
	}
	return true
}

// releaseLocked takes m's set away and m off the ring.
func (s *Store) releaseLocked(m *merchant) {
	m.set.Store(nil)
	if i := m.ring; i >= 0 {
		last := len(s.ring) - 1
		s.ring[i], s.ring[last] = s.ring[last], nil
		s.ring = s.ring[:last]
		if i < last {
			s.ring[i].ring = i
		}
		m.ring = -1
	}
}

// evicted records the eviction of m's set cs, and reports it when it
// means the Store is too small.
func (s *Store) evicted(m *merchant, cs *certSet) {
	m.hist.wasEvicted(cs.serials())
	age := s.wall().Sub(cs.obtained)
	if s.opts.Events != nil && age < s.opts.RefreshInterval {
		emit(context.Background(), s.opts.Events, Event{Kind: EventStoreTooSmall, MerchantID: m.id,
			Err: fmt.Errorf("wechatpay: store: merchant %s's certificates were evicted %s after they were obtained: StoreOptions.Size %d is smaller than the merchants in use", m.id, age.Round(time.Second), s.opts.Size)})
	}
}

// PublicKey returns the key that checks signatures made with serial for
// merchantID. A PUB_KEY_ID_ serial is looked up among the configured public
// keys and never fetched. A platform certificate serial that is not cached
// causes one download (shared by all concurrent callers, at most one per
// MinRefreshInterval); the download continues after ctx is done, bounded
// by FetchTimeout, while this call returns ctx.Err(). Expired certificates
// are never returned. Errors wrap ErrUnknownSerial, ErrExpiredKey,
// ErrUnknownMerchant, ErrCertificateDownload or the context's error.
func (s *Store) PublicKey(ctx context.Context, merchantID, serial string) (*rsa.PublicKey, error) {
	// The hit: two atomic loads, a scan of a few serials, one monotonic
	// clock read, no lock and no shared write (touch writes only a clear
	// bit).
	if m, cs := s.current(merchantID); cs != nil {
		mono := s.monoNow()
		if k := cs.valid(serial, mono); k != nil {
			cs.touch()
			if mono >= cs.refreshAt {
				s.maybeRefreshAhead(ctx, m, mono)
			}
			return k.pub, nil
		}
	}
	return s.publicKeySlow(ctx, merchantID, serial)
}

func (s *Store) publicKeySlow(ctx context.Context, merchantID, serial string) (*rsa.PublicKey, error) {
	m, err := s.merchant(merchantID)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(serial, wire.PublicKeyPrefix) {
		if k := m.publicKeys[serial]; k != nil {
			return k, nil
		}
		return nil, fmt.Errorf("%w: public key %q is not configured for merchant %s", ErrUnknownSerial, wire.Truncate(serial, 64), m.id)
	}
	serial = strings.ToUpper(serial)
	have := func(cs *certSet) bool { return cs.valid(serial, s.monoNow()) != nil }
	if _, cs := s.current(m.id); cs != nil && have(cs) {
		return cs.valid(serial, s.monoNow()).pub, nil
	}
	if m.aead == nil {
		return nil, fmt.Errorf("%w %q: merchant %s has no APIv3Key to download platform certificates", ErrUnknownSerial, wire.Truncate(serial, 64), m.id)
	}
	got, err := s.refresh(ctx, m, false, serial, have)
	var rr errRecentlyRefreshed
	if errors.As(err, &rr) || errors.Is(err, ErrNoPlatformCertificates) {
		s.rateLimited(ctx, m, serial, err)
	}
	switch {
	case errors.As(err, &rr):
		return nil, fmt.Errorf("%w %q for merchant %s: %w", ErrUnknownSerial, wire.Truncate(serial, 64), m.id, rr)
	case errors.Is(err, ErrNoPlatformCertificates):
		return nil, fmt.Errorf("%w %q: %w", ErrUnknownSerial, wire.Truncate(serial, 64), err)
	case err != nil:
		return nil, err
	}
	// What the download brought answers, even if evicted since; a
	// registration replaced meanwhile does not.
	cur, cs := s.current(m.id)
	if cur == m && got != nil {
		cs = got
	}
	if cur != m || cs == nil || cs.find(serial) < 0 {
		return nil, fmt.Errorf("%w %q: not among merchant %s's platform certificates", ErrUnknownSerial, wire.Truncate(serial, 64), m.id)
	}
	if k := cs.valid(serial, s.monoNow()); k != nil {
		return k.pub, nil
	}
	k := cs.keys[cs.find(serial)]
	return nil, fmt.Errorf("%w: %s expired at %s", ErrExpiredKey, serial, k.notAfter.Format(time.RFC3339))
}

// Newest returns merchantID's valid platform certificate with the latest
// expiry, downloading certificates (within the rate limit) if none is
// cached. Encrypt sensitive request fields with it and send its serial in
// Wechatpay-Serial.
func (s *Store) Newest(ctx context.Context, merchantID string) (*x509.Certificate, error) {
	k, err := s.newest(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	return k.certificate()
}

// newest is Newest without parsing the certificate.
func (s *Store) newest(ctx context.Context, merchantID string) (*storedKey, error) {
	m, err := s.merchant(merchantID)
	if err != nil {
		return nil, err
	}
	newest := func(cs *certSet) *storedKey {
		now, mono := s.clock()
		return cs.newest(now, mono)
	}
	have := func(cs *certSet) bool { return newest(cs) != nil }
	if _, cs := s.current(m.id); cs != nil && have(cs) {
		return newest(cs), nil
	}
	if m.aead == nil {
		return nil, fmt.Errorf("wechatpay: merchant %s has no platform certificates to download (no APIv3Key)", m.id)
	}
	got, err := s.refresh(ctx, m, false, "", have)
	if err != nil {
		var rr errRecentlyRefreshed
		if errors.As(err, &rr) || errors.Is(err, ErrNoPlatformCertificates) {
			s.rateLimited(ctx, m, "", err)
		}
		return nil, fmt.Errorf("wechatpay: merchant %s has no valid platform certificate: %w", m.id, err)
	}
	cur, cs := s.current(m.id)
	if cur == m && got != nil {
		cs = got
	}
	if cur == m && cs != nil && have(cs) {
		return newest(cs), nil
	}
	return nil, fmt.Errorf("wechatpay: merchant %s has no valid platform certificate", m.id)
}

// Certificates returns merchantID's cached platform certificates, latest
// expiry first, without downloading.
func (s *Store) Certificates(merchantID string) []*x509.Certificate {
	_, cs := s.current(merchantID)
	if cs == nil {
		return nil
	}
	certs := make([]*x509.Certificate, 0, len(cs.keys))
	for _, k := range cs.keys {
		if c, err := k.certificate(); err == nil { // parsed once already: cannot fail
			certs = append(certs, c)
		}
	}
	return certs
}

// requestSerial is the Wechatpay-Serial a request of merchantID should
// carry when nothing else says: its newest valid platform certificate, if
// cached.
func (s *Store) requestSerial(merchantID string) string {
	_, cs := s.current(merchantID)
	if cs == nil {
		return ""
	}
	now, mono := s.clock()
	if k := cs.newest(now, mono); k != nil {
		return k.serial
	}
	return ""
}

// Len returns the number of cached platform certificates, across all
// merchants.
func (s *Store) Len() int {
	s.ringMu.Lock()
	defer s.ringMu.Unlock()
	n := 0
	for _, m := range s.ring {
		n += len(m.set.Load().keys)
	}
	return n
}
