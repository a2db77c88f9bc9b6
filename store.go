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
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/wxpaykit/wechatpay/internal/wire"
	"golang.org/x/sync/singleflight"
)

// maxRefreshInterval: WeChat Pay lists a new certificate 24 h before using
// it and advises refreshing more often than every 12 h (docs/protocol.md §4.4).
const maxRefreshInterval = 12 * time.Hour

// StoreOptions configures a Store. The zero value gives the defaults.
type StoreOptions struct {
	// Size is the number of merchants whose certificate sets the Store
	// holds at once. Zero means DefaultStoreSize (1024). The set of the
	// least recently used merchant is evicted whole and downloaded again
	// when next needed, within the download rate limit: size the Store for
	// the merchants active within MinRefreshInterval.
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
	// refused a download by MinRefreshInterval (EventRateLimited).
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
// in an LRU cache of Size sets. A serial that is not in the set causes one
// download for that merchant, however many callers ask at once, and at
// most one per MinRefreshInterval whatever the serials asked for, the
// certificates' expiry, evictions or failures; only the first download,
// Refresh and the background refresh escape that limit. A set older than
// RefreshInterval keeps serving while one download runs in the
// background. Intervals are measured on the monotonic clock; validity on
// the wall clock. Answers come only from the merchant's current
// registration. Call Close to wait for background downloads.
type Store struct {
	sets      *lru.Cache[string, *certSet]
	merchants sync.Map // merchant ID → *registration
	group     singleflight.Group
	gen       atomic.Uint64 // registrations so far
	opts      StoreOptions

	mu     sync.Mutex // guards closed and the Add side of bg
	closed bool
	bg     sync.WaitGroup

	cacheDown atomic.Int64 // monotonic time until which the Cache is left alone

	start time.Time            // monotonic origin
	now   func() time.Time     // test hook: wall clock; nil means time.Now
	mono  func() time.Duration // test hook: monotonic time since start, set with now
}

var _ KeySource = (*Store)(nil)

// certSet is one merchant's platform certificates, as one download (or
// AddCertificates) gave them. It is immutable once cached.
type certSet struct {
	reg    *registration
	keys   map[string]*storedKey // by upper-case serial
	source string                // "download", "added"
}

type storedKey struct {
	pub      *rsa.PublicKey
	cert     *x509.Certificate
	serial   string    // wire.CertSerial(cert), formatted once
	notAfter time.Time // the earlier of cert.NotAfter and the listed expire_time
}

func newStoredKey(c *x509.Certificate, pub *rsa.PublicKey, notAfter time.Time) *storedKey {
	return &storedKey{pub: pub, cert: c, serial: wire.CertSerial(c), notAfter: notAfter}
}

// sorted returns the set's keys, latest expiry first (then by serial).
func (cs *certSet) sorted() []*storedKey {
	keys := slices.Collect(maps.Values(cs.keys))
	slices.SortFunc(keys, func(a, b *storedKey) int {
		if c := b.notAfter.Compare(a.notAfter); c != 0 {
			return c
		}
		return strings.Compare(b.serial, a.serial)
	})
	return keys
}

// newest returns the valid key with the latest expiry, or nil.
func (cs *certSet) newest(now time.Time) *storedKey {
	var best *storedKey
	for _, k := range cs.keys {
		if now.Before(k.cert.NotBefore) || !now.Before(k.notAfter) {
			continue
		}
		if best == nil || k.notAfter.After(best.notAfter) ||
			k.notAfter.Equal(best.notAfter) && k.serial > best.serial {
			best = k
		}
	}
	return best
}

// never is the monotonic time of an event that has not happened.
const never = time.Duration(-1 << 62)

// registration is one Register call for a merchant: how to download and
// what happened to downloads. A new registration supersedes the old one,
// whose downloads are then discarded.
type registration struct {
	id         string
	gen        uint64
	signer     *Signer
	aead       cipher.AEAD // nil: cannot download
	keyHash    [32]byte    // SHA-256 of the APIv3 key, to tell a change
	certURL    string
	base       http.RoundTripper
	userAgent  string
	publicKeys map[string]*rsa.PublicKey // immutable

	superseded   atomic.Bool
	refreshing   atomic.Bool  // a background refresh is running
	lastAttempt  atomic.Int64 // monotonic time.Duration of the last download attempt
	lastSuccess  atomic.Int64 // monotonic time.Duration of the last success
	downloads    atomic.Int64
	rateLimited  atomic.Int64
	cacheRefused atomic.Int64 // cache entries refused by the checks

	mu            sync.Mutex // guards what follows
	lastErr       error
	attemptWall   time.Time
	successWall   time.Time
	publicKeyOnly bool
}

func (r *registration) flightKey() string { return r.id + "\x00" + strconv.FormatUint(r.gen, 10) }

// sameTrust reports whether certificates downloaded for a may be kept for
// b: same APIv3 key, endpoint, Base and public keys.
func (a *registration) sameTrust(b *registration) bool {
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
	c, err := lru.New[string, *certSet](opts.Size)
	if err != nil {
		return nil, fmt.Errorf("wechatpay: store: %w", err)
	}
	return &Store{sets: c, opts: opts, start: time.Now()}, nil
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
	r := &registration{
		id:        cfg.MerchantID,
		gen:       s.gen.Add(1),
		signer:    &Signer{MerchantID: cfg.MerchantID, CertificateSerial: cfg.CertificateSerial, Key: cfg.PrivateKey},
		aead:      aead,
		keyHash:   sha256.Sum256([]byte(cfg.APIv3Key)),
		certURL:   certificatesURL(u),
		base:      cfg.Base,
		userAgent: cfg.UserAgent,
	}
	r.lastAttempt.Store(int64(never))
	r.lastSuccess.Store(int64(never))
	if cfg.PublicKey != nil {
		r.publicKeys = map[string]*rsa.PublicKey{cfg.PublicKeyID: cfg.PublicKey}
	}
	s.replace(cfg.MerchantID, r)
	return nil
}

// replace makes r the merchant's registration (nil: none), carrying over
// the cached set and the download history when the trust inputs did not
// change, and supersedes the old one.
func (s *Store) replace(id string, r *registration) {
	v, ok := s.merchants.Load(id)
	var old *registration
	if ok {
		old = v.(*registration)
	}
	keep := old != nil && r != nil && old.sameTrust(r)
	if keep {
		r.lastAttempt.Store(old.lastAttempt.Load())
		r.lastSuccess.Store(old.lastSuccess.Load())
		r.downloads.Store(old.downloads.Load())
		r.rateLimited.Store(old.rateLimited.Load())
		r.cacheRefused.Store(old.cacheRefused.Load())
		old.mu.Lock()
		r.lastErr, r.attemptWall, r.successWall, r.publicKeyOnly = old.lastErr, old.attemptWall, old.successWall, old.publicKeyOnly
		old.mu.Unlock()
		if cs, ok := s.sets.Peek(id); ok && cs.reg == old {
			s.sets.Add(id, &certSet{reg: r, keys: cs.keys, source: cs.source})
		}
	}
	if r != nil {
		s.merchants.Store(id, r)
	} else {
		s.merchants.Delete(id)
	}
	if old != nil {
		old.superseded.Store(true)
		if cs, ok := s.sets.Peek(id); ok && cs.reg == old {
			s.sets.Remove(id)
		}
	}
}

// Unregister forgets a merchant and its cached certificates. A download
// still running for it is discarded when it finishes.
func (s *Store) Unregister(merchantID string) { s.replace(merchantID, nil) }

func (s *Store) registration(id string) (*registration, error) {
	v, ok := s.merchants.Load(id)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownMerchant, wire.Truncate(id, 32))
	}
	return v.(*registration), nil
}

// currentSet returns r's cached set, if r is current and has one.
func (s *Store) currentSet(r *registration) *certSet {
	cs, ok := s.sets.Get(r.id)
	if !ok || cs.reg != r || r.superseded.Load() {
		return nil
	}
	return cs
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
	if cs, ok := s.sets.Get(merchantID); ok && !cs.reg.superseded.Load() {
		if k := cs.keys[serial]; k != nil {
			now, mono := s.clock()
			if now.Before(k.notAfter) {
				s.maybeRefreshAhead(ctx, cs.reg, mono)
				return k.pub, nil
			}
		}
	}
	return s.publicKeySlow(ctx, merchantID, serial)
}

func (s *Store) publicKeySlow(ctx context.Context, merchantID, serial string) (*rsa.PublicKey, error) {
	r, err := s.registration(merchantID)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(serial, wire.PublicKeyPrefix) {
		if k := r.publicKeys[serial]; k != nil {
			return k, nil
		}
		return nil, fmt.Errorf("%w: public key %q is not configured for merchant %s", ErrUnknownSerial, wire.Truncate(serial, 64), r.id)
	}
	serial = strings.ToUpper(serial)
	lookup := func() (*storedKey, bool) {
		cs := s.currentSet(r)
		if cs == nil {
			return nil, false
		}
		k := cs.keys[serial]
		return k, k != nil && s.wall().Before(k.notAfter)
	}
	if k, ok := lookup(); ok {
		return k.pub, nil
	}
	if r.aead == nil {
		return nil, fmt.Errorf("%w %q: merchant %s has no APIv3Key to download platform certificates", ErrUnknownSerial, wire.Truncate(serial, 64), r.id)
	}
	err = s.refresh(ctx, r, false, func(cs *certSet) bool {
		k := cs.keys[serial]
		return k != nil && s.wall().Before(k.notAfter)
	})
	var rr errRecentlyRefreshed
	if errors.As(err, &rr) || errors.Is(err, ErrNoPlatformCertificates) {
		s.rateLimited(ctx, r, serial, err)
	}
	switch {
	case errors.As(err, &rr):
		return nil, fmt.Errorf("%w %q for merchant %s: %w", ErrUnknownSerial, wire.Truncate(serial, 64), r.id, rr)
	case errors.Is(err, ErrNoPlatformCertificates):
		return nil, fmt.Errorf("%w %q: %w", ErrUnknownSerial, wire.Truncate(serial, 64), err)
	case err != nil:
		return nil, err
	}
	k, ok := lookup()
	switch {
	case ok:
		return k.pub, nil
	case k != nil:
		return nil, fmt.Errorf("%w: %s expired at %s", ErrExpiredKey, serial, k.notAfter.Format(time.RFC3339))
	}
	return nil, fmt.Errorf("%w %q: not among merchant %s's platform certificates", ErrUnknownSerial, wire.Truncate(serial, 64), r.id)
}

// errRecentlyRefreshed is what a rate-limited refresh returns; callers then
// report the serial as unknown.
type errRecentlyRefreshed struct {
	ago, wait time.Duration
	last      error // the last download's error, if it failed
}

func (e errRecentlyRefreshed) Error() string {
	if e.last != nil {
		return fmt.Sprintf("the last certificate download, %s ago, failed (next try allowed in %s): %v", e.ago.Round(time.Millisecond), e.wait.Round(time.Millisecond), e.last)
	}
	return fmt.Sprintf("certificates were downloaded %s ago; next download for an unknown serial allowed in %s", e.ago.Round(time.Millisecond), e.wait.Round(time.Millisecond))
}

func (e errRecentlyRefreshed) Unwrap() error { return e.last }

// errSuperseded is the result of a download for a registration that was
// replaced or removed while it ran: its result is discarded.
var errSuperseded = errors.New("wechatpay: the merchant was registered again or unregistered during the download; its result was discarded")

// refresh downloads r's certificates, sharing one download among all
// concurrent callers for r. Unless force is set, the download happens only
// if the current set does not already satisfy have and the rate limit
// allows it. It waits for the shared download or for ctx, whichever comes
// first.
func (s *Store) refresh(ctx context.Context, r *registration, force bool, have func(*certSet) bool) error {
	ch := s.group.DoChan(r.flightKey(), func() (_ any, err error) {
		// User code runs in here (Base, a KMS signer); singleflight would
		// re-raise its panic on a goroutine nobody can recover.
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("%w for merchant %s: panic during the download: %s", ErrCertificateDownload, r.id, wire.Truncate(fmt.Sprint(p), 200))
				r.recordFailure(err)
			}
		}()
		if !force {
			// A download that finished just before this call started may
			// already have brought what the caller needs.
			if cs := s.currentSet(r); cs != nil && have != nil && have(cs) {
				return nil, nil
			}
			if err := s.mayDownload(r); err != nil {
				return nil, err
			}
		}
		s.mu.Lock()
		tracked := !s.closed
		if tracked {
			s.bg.Add(1)
		}
		s.mu.Unlock()
		if tracked {
			defer s.bg.Done()
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.FetchTimeout)
		defer cancel()
		return nil, s.obtain(fctx, r, have)
	})
	select {
	case <-ctx.Done():
		return ctx.Err() // the download goes on for the other waiters
	case res := <-ch:
		return res.Err
	}
}

// mayDownload says whether a lookup may cause a download now. It runs
// inside the merchant's singleflight call, so that callers arriving while
// a download runs join it instead of being turned away.
func (s *Store) mayDownload(r *registration) error {
	last := time.Duration(r.lastAttempt.Load())
	if last == never {
		return nil
	}
	_, mono := s.clock()
	ago := mono - last
	r.mu.Lock()
	pkOnly, lastErr := r.publicKeyOnly, r.lastErr
	r.mu.Unlock()
	if pkOnly && ago < s.opts.RefreshInterval {
		return ErrNoPlatformCertificates
	}
	if ago >= s.opts.MinRefreshInterval {
		return nil
	}
	return errRecentlyRefreshed{ago: ago, wait: s.opts.MinRefreshInterval - ago, last: lastErr}
}

// rateLimited counts and reports a lookup that was refused a download.
func (s *Store) rateLimited(ctx context.Context, r *registration, serial string, err error) {
	r.rateLimited.Add(1)
	if s.opts.Events != nil {
		emit(ctx, s.opts.Events, Event{Kind: EventRateLimited, MerchantID: r.id, Serial: wire.Truncate(serial, 64), Err: err})
	}
}

// maybeRefreshAhead starts one background download when r's certificates
// are older than RefreshInterval. It never blocks the caller.
func (s *Store) maybeRefreshAhead(ctx context.Context, r *registration, mono time.Duration) {
	if r.aead == nil ||
		mono-time.Duration(r.lastSuccess.Load()) < s.opts.RefreshInterval ||
		mono-time.Duration(r.lastAttempt.Load()) < s.opts.MinRefreshInterval {
		return
	}
	if !r.refreshing.CompareAndSwap(false, true) {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		r.refreshing.Store(false)
		return
	}
	s.bg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.bg.Done()
		defer r.refreshing.Store(false)
		// A failure is recorded by download, shown by Status and
		// reported; the cached set keeps serving until it expires.
		if err := s.refresh(context.WithoutCancel(ctx), r, true, nil); err != nil && s.opts.Events != nil {
			emit(ctx, s.opts.Events, Event{Kind: EventRefreshFailed, MerchantID: r.id, Host: hostOfURL(r.certURL), Err: err})
		}
	}()
}

// Close waits for background refreshes to finish and stops new ones. The
// store keeps answering from its cache and downloading on demand.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.bg.Wait()
	return nil
}

// Refresh downloads merchantID's platform certificates now, ignoring the
// minimum interval, and waits for the result or for ctx. With
// StoreOptions.Cache, a download newer than the Store's that another
// instance put there serves instead.
func (s *Store) Refresh(ctx context.Context, merchantID string) error {
	r, err := s.registration(merchantID)
	if err != nil {
		return err
	}
	if r.aead == nil {
		return fmt.Errorf("wechatpay: merchant %s has no APIv3Key to download platform certificates", r.id)
	}
	return s.refresh(ctx, r, true, nil)
}

func (r *registration) recordFailure(err error) {
	r.mu.Lock()
	r.lastErr = err
	r.mu.Unlock()
}

// download fetches, checks and caches r's certificates. It runs inside the
// merchant's singleflight call.
func (s *Store) download(ctx context.Context, r *registration) (err error) {
	now, mono := s.clock()
	r.lastAttempt.Store(int64(mono))
	r.downloads.Add(1)
	r.mu.Lock()
	r.attemptWall = now
	r.mu.Unlock()
	var keys []*storedKey
	defer func() {
		if err != nil {
			if !errors.Is(err, ErrCertificateDownload) {
				err = fmt.Errorf("%w for merchant %s: %w", ErrCertificateDownload, r.id, err)
			}
			r.recordFailure(err)
		}
		if s.opts.Events != nil {
			_, end := s.clock()
			ev := Event{Kind: EventCertificateDownload, Time: now, MerchantID: r.id, Host: hostOfURL(r.certURL), Duration: end - mono, Err: err}
			for _, k := range keys {
				ev.Serials = append(ev.Serials, k.serial)
			}
			emit(ctx, s.opts.Events, ev)
		}
	}()
	body, header, err := fetchCertificates(ctx, r)
	if r.superseded.Load() {
		return errSuperseded
	}
	if errors.Is(err, ErrNoPlatformCertificates) {
		// The merchant moved to public-key mode: its platform
		// certificates are void (docs/protocol.md §3.3).
		r.mu.Lock()
		r.publicKeyOnly = true
		r.mu.Unlock()
		if cs, ok := s.sets.Peek(r.id); ok && cs.reg == r {
			s.sets.Remove(r.id)
		}
		return err
	}
	if err != nil {
		return err // the cache is left as it was
	}
	checked, err := checkDownload(ctx, r, body, header, now, s.opts.Roots, s.trusted(r, now))
	if err != nil {
		return err
	}
	if _, err := s.install(r, checked, "download", now, mono); err != nil {
		return err
	}
	keys = checked
	s.putCache(ctx, r, body, header, keys, now)
	return nil
}

// hostOfURL is the host of a URL the Store built itself.
func hostOfURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Host
	}
	return ""
}

// trusted returns the keys, besides a download's own certificates, that
// may have signed it: r's configured public keys and its cached
// certificates valid at now.
func (s *Store) trusted(r *registration, now time.Time) func(serial string) *rsa.PublicKey {
	return func(serial string) *rsa.PublicKey {
		if k := r.publicKeys[serial]; k != nil {
			return k
		}
		if cs := s.currentSet(r); cs != nil {
			if k := cs.keys[strings.ToUpper(serial)]; k != nil && now.Before(k.notAfter) {
				return k.pub
			}
		}
		return nil
	}
}

// install makes keys, checked, r's certificate set, as obtained (from
// source) at wall time wall and monotonic time mono.
func (s *Store) install(r *registration, keys []*storedKey, source string, wall time.Time, mono time.Duration) (*certSet, error) {
	cs := &certSet{reg: r, keys: make(map[string]*storedKey, len(keys)), source: source}
	for _, k := range keys {
		cs.keys[k.serial] = k
	}
	s.sets.Add(r.id, cs)
	if r.superseded.Load() {
		// Unregistered or replaced meanwhile: take back what was added.
		if cur, ok := s.sets.Peek(r.id); ok && cur == cs {
			s.sets.Remove(r.id)
		}
		return nil, errSuperseded
	}
	r.mu.Lock()
	r.lastErr = nil
	r.publicKeyOnly = false
	r.successWall = wall
	r.mu.Unlock()
	r.lastSuccess.Store(int64(mono))
	return cs, nil
}

// Newest returns merchantID's valid platform certificate with the latest
// expiry, downloading certificates (within the rate limit) if none is
// cached. Encrypt sensitive request fields with it and send its serial in
// Wechatpay-Serial.
func (s *Store) Newest(ctx context.Context, merchantID string) (*x509.Certificate, error) {
	r, err := s.registration(merchantID)
	if err != nil {
		return nil, err
	}
	have := func(cs *certSet) bool { return cs.newest(s.wall()) != nil }
	if cs := s.currentSet(r); cs != nil && have(cs) {
		return cs.newest(s.wall()).cert, nil
	}
	if r.aead == nil {
		return nil, fmt.Errorf("wechatpay: merchant %s has no platform certificates to download (no APIv3Key)", r.id)
	}
	if err := s.refresh(ctx, r, false, have); err != nil {
		var rr errRecentlyRefreshed
		if errors.As(err, &rr) || errors.Is(err, ErrNoPlatformCertificates) {
			s.rateLimited(ctx, r, "", err)
		}
		return nil, fmt.Errorf("wechatpay: merchant %s has no valid platform certificate: %w", r.id, err)
	}
	if cs := s.currentSet(r); cs != nil && have(cs) {
		return cs.newest(s.wall()).cert, nil
	}
	return nil, fmt.Errorf("wechatpay: merchant %s has no valid platform certificate", r.id)
}

// Certificates returns merchantID's cached platform certificates, latest
// expiry first, without downloading.
func (s *Store) Certificates(merchantID string) []*x509.Certificate {
	cs, ok := s.sets.Peek(merchantID)
	if !ok || cs.reg.superseded.Load() {
		return nil
	}
	keys := cs.sorted()
	certs := make([]*x509.Certificate, len(keys))
	for i, k := range keys {
		certs[i] = k.cert
	}
	return certs
}

// requestSerial is the Wechatpay-Serial a request of merchantID should
// carry when nothing else says: its newest valid platform certificate, if
// cached.
func (s *Store) requestSerial(merchantID string) string {
	cs, ok := s.sets.Peek(merchantID)
	if !ok || cs.reg.superseded.Load() {
		return ""
	}
	if k := cs.newest(s.wall()); k != nil {
		return k.serial
	}
	return ""
}

// Len returns the number of cached platform certificates, across all
// merchants.
func (s *Store) Len() int {
	n := 0
	for _, cs := range s.sets.Values() {
		if !cs.reg.superseded.Load() {
			n += len(cs.keys)
		}
	}
	return n
}
