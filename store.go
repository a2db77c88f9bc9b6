package wechatpay

import (
	"context"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

// Store defaults.
const (
	DefaultStoreSize          = 1024
	DefaultRefreshInterval    = 6 * time.Hour
	DefaultMinRefreshInterval = time.Minute
	DefaultFetchTimeout       = 10 * time.Second
	// maxRefreshInterval: WeChat Pay lists a new certificate 24 h before
	// using it and advises refreshing more often than every 12 h
	// (PROTOCOL §4.4).
	maxRefreshInterval = 12 * time.Hour
)

// ErrUnknownMerchant is returned when a Store is asked about a merchant
// that was never registered with it.
var ErrUnknownMerchant = errors.New("wechatpay: merchant not registered with the store")

// ErrNoPlatformCertificates means WeChat Pay answered the certificate
// download with 404 RESOURCE_NOT_EXISTS: the merchant uses a WeChat Pay
// public key only (PROTOCOL §3). The Store remembers it.
var ErrNoPlatformCertificates = errors.New("wechatpay: merchant has no platform certificates (public-key mode: configure PublicKeyID and PublicKey)")

// ErrCertificateDownload wraps every failure to download or check platform
// certificates.
var ErrCertificateDownload = errors.New("wechatpay: certificate download failed")

// StoreOptions configures a Store. The zero value gives the defaults.
type StoreOptions struct {
	// Size is the number of platform certificates held, across all
	// merchants. Zero means DefaultStoreSize (1024). The least recently
	// used are evicted and fetched again when next needed.
	Size int
	// RefreshInterval is the age after which a merchant's certificates are
	// refreshed in the background while the cached ones keep serving.
	// Zero means DefaultRefreshInterval (6 h); it must be under 12 h.
	RefreshInterval time.Duration
	// MinRefreshInterval is the least time between two downloads for one
	// merchant caused by unknown serials (which callers, and attackers
	// posting to a callback URL, control). Zero means 1 minute.
	MinRefreshInterval time.Duration
	// FetchTimeout bounds one download. It runs detached from the
	// cancellation of the request that caused it, so that one caller giving
	// up does not fail the others waiting on it. Zero means 10 s.
	FetchTimeout time.Duration
	// Roots, if set, is the pool platform certificates must chain to.
	Roots *x509.CertPool

	// Cache, if set, keeps each certificate download as WeChat Pay sent it
	// (DirCache across restarts, package redisstore across a fleet). A
	// merchant with no certificates in memory, or whose certificates are
	// due for a refresh, is first looked up there; what is found goes
	// through every check of a fresh download, with the merchant's APIv3
	// key and the clock of now, and is used only if it is newer than what
	// the Store holds and at most a day old. An entry that fails the checks
	// is deleted and replaced by a download. Verification of cached keys
	// never touches the Cache.
	Cache Cache
	// Locker, if set, is a lock shared by a fleet: a Store takes it before
	// downloading a merchant's certificates (into Cache), and one that
	// cannot waits a moment for the holder's download to appear in Cache,
	// then downloads by itself rather than fail. Without Cache it is
	// ignored.
	Locker Locker
	// CacheErrorHandler, if set, receives every failure of Cache or Locker
	// and every cache entry the checks refused (those errors wrap
	// ErrCertificateDownload). The Store carries on without the cache:
	// these errors never fail a verification. It must not block.
	CacheErrorHandler func(err error)
}

// A Store holds the keys that verify WeChat Pay signatures: platform
// certificates, which it downloads, decrypts and checks by itself per
// merchant, and configured WeChat Pay public keys (PUB_KEY_ID_...). It is
// shared safely by any number of Transports, Verifiers and merchants.
//
// Certificates live in an LRU cache keyed by (merchant ID, serial). A serial
// that is not cached causes one download for that merchant, however many
// callers ask at once, and at most one per MinRefreshInterval; a merchant's
// certificates older than RefreshInterval keep serving while one download
// runs in the background. Call Close to wait for background downloads.
type Store struct {
	keys      *lru.Cache[storeKey, *storedKey]
	merchants sync.Map // merchant ID → *merchant
	group     singleflight.Group
	opts      StoreOptions

	mu     sync.Mutex // guards closed and the Add side of bg
	closed bool
	bg     sync.WaitGroup

	cacheRejected atomic.Int64 // cache entries refused by the checks

	now func() time.Time // test hook; nil means time.Now
}

var _ KeySource = (*Store)(nil)

type storeKey struct{ merchant, serial string }

type storedKey struct {
	pub      *rsa.PublicKey
	cert     *x509.Certificate
	notAfter time.Time
	m        *merchant
}

// merchant is the per-merchant state: how to download, and what was last
// downloaded. The certificates themselves are only in the LRU.
type merchant struct {
	id         string
	signer     *Signer
	aead       cipher.AEAD // nil: cannot download (public-key only)
	certURL    string
	base       http.RoundTripper
	userAgent  string
	publicKeys map[string]*rsa.PublicKey // immutable after registration

	lastAttempt   atomic.Int64          // UnixNano of the last download attempt
	lastSuccess   atomic.Int64          // UnixNano of the last successful download
	refreshing    atomic.Bool           // a background refresh is running
	publicKeyOnly atomic.Bool           // the endpoint said RESOURCE_NOT_EXISTS
	lastErr       atomic.Pointer[error] // error of the last download; nil after a success

	mu      sync.Mutex
	serials []string // serials of the last successful download
	newest  string   // serial of the newest valid certificate
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
	c, err := lru.New[storeKey, *storedKey](opts.Size)
	if err != nil {
		return nil, fmt.Errorf("wechatpay: store: %w", err)
	}
	return &Store{keys: c, opts: opts}, nil
}

func (s *Store) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// Register tells the store how to download platform certificates for
// cfg.MerchantID (signing with its key, decrypting with its APIv3 key) and
// which WeChat Pay public key it has. Registering a merchant again replaces
// its settings and keeps its cached certificates. Register is called by
// NewTransport; call it yourself for a Verifier of your own.
func (s *Store) Register(cfg Config) error {
	var problems []string
	if cfg.MerchantID == "" {
		problems = append(problems, "MerchantID is empty")
	}
	if cfg.CertificateSerial == "" {
		problems = append(problems, "CertificateSerial is empty")
	}
	if cfg.PrivateKey == nil {
		problems = append(problems, "PrivateKey is nil")
	}
	var aead cipher.AEAD
	if cfg.APIv3Key != "" {
		var err error
		if aead, err = NewAEAD(cfg.APIv3Key); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if (cfg.PublicKeyID == "") != (cfg.PublicKey == nil) {
		problems = append(problems, "PublicKeyID and PublicKey must be set together")
	} else if cfg.PublicKeyID != "" && !strings.HasPrefix(cfg.PublicKeyID, publicKeyPrefix) {
		problems = append(problems, fmt.Sprintf("PublicKeyID %q does not start with %s", truncate(cfg.PublicKeyID, 64), publicKeyPrefix))
	}
	if cfg.APIv3Key == "" && cfg.PublicKey == nil {
		problems = append(problems, "need APIv3Key (to download platform certificates) or PublicKeyID and PublicKey")
	}
	u, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return fmt.Errorf("wechatpay: config: %s", strings.Join(problems, "; "))
	}
	m := &merchant{
		id:        cfg.MerchantID,
		signer:    &Signer{MerchantID: cfg.MerchantID, CertificateSerial: cfg.CertificateSerial, Key: cfg.PrivateKey},
		aead:      aead,
		certURL:   certificatesURL(u),
		base:      cfg.Base,
		userAgent: cfg.UserAgent,
	}
	if cfg.PublicKey != nil {
		m.publicKeys = map[string]*rsa.PublicKey{cfg.PublicKeyID: cfg.PublicKey}
	}
	if old, ok := s.merchants.Load(cfg.MerchantID); ok {
		o := old.(*merchant)
		o.mu.Lock()
		m.serials, m.newest = o.serials, o.newest
		o.mu.Unlock()
		m.lastAttempt.Store(o.lastAttempt.Load())
		m.lastSuccess.Store(o.lastSuccess.Load())
		m.publicKeyOnly.Store(o.publicKeyOnly.Load())
		// Re-point cached entries at the new state.
		for _, serial := range m.serials {
			if e, ok := s.keys.Peek(storeKey{m.id, serial}); ok {
				s.keys.Add(storeKey{m.id, serial}, &storedKey{pub: e.pub, cert: e.cert, notAfter: e.notAfter, m: m})
			}
		}
	}
	s.merchants.Store(cfg.MerchantID, m)
	return nil
}

// Unregister forgets a merchant and its cached certificates.
func (s *Store) Unregister(merchantID string) {
	v, ok := s.merchants.LoadAndDelete(merchantID)
	if !ok {
		return
	}
	m := v.(*merchant)
	m.mu.Lock()
	serials := m.serials
	m.mu.Unlock()
	for _, serial := range serials {
		s.keys.Remove(storeKey{merchantID, serial})
	}
}

func (s *Store) merchant(id string) (*merchant, error) {
	v, ok := s.merchants.Load(id)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownMerchant, truncate(id, 32))
	}
	return v.(*merchant), nil
}

// PublicKey returns the key that checks signatures made with serial for
// merchantID. A PUB_KEY_ID_ serial is looked up among the configured public
// keys and never fetched. A platform certificate serial that is not cached
// causes one download (shared by all concurrent callers, at most one per
// MinRefreshInterval unless the serial was cached before and evicted); the
// download continues after ctx is done, bounded by FetchTimeout, while this
// call returns ctx.Err(). Expired certificates are never returned. Errors
// wrap ErrUnknownSerial, ErrExpiredKey, ErrUnknownMerchant,
// ErrCertificateDownload or the context's error.
func (s *Store) PublicKey(ctx context.Context, merchantID, serial string) (*rsa.PublicKey, error) {
	if e, ok := s.keys.Get(storeKey{merchantID, serial}); ok {
		now := s.clock()
		if now.Before(e.notAfter) {
			s.maybeRefreshAhead(ctx, e.m, now)
			return e.pub, nil
		}
	}
	return s.publicKeySlow(ctx, merchantID, serial)
}

func (s *Store) publicKeySlow(ctx context.Context, merchantID, serial string) (*rsa.PublicKey, error) {
	m, err := s.merchant(merchantID)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(serial, publicKeyPrefix) {
		if k := m.publicKeys[serial]; k != nil {
			return k, nil
		}
		return nil, fmt.Errorf("%w: public key %q is not configured for merchant %s", ErrUnknownSerial, truncate(serial, 64), m.id)
	}
	if m.aead == nil {
		return nil, fmt.Errorf("%w %q: merchant %s has no APIv3Key to download platform certificates", ErrUnknownSerial, truncate(serial, 64), m.id)
	}
	err = s.refresh(ctx, m, serial, false)
	var rr errRecentlyRefreshed
	switch {
	case errors.As(err, &rr):
		return nil, fmt.Errorf("%w %q for merchant %s: %w", ErrUnknownSerial, truncate(serial, 64), m.id, rr)
	case errors.Is(err, ErrNoPlatformCertificates):
		return nil, fmt.Errorf("%w %q: %w", ErrUnknownSerial, truncate(serial, 64), err)
	case err != nil:
		return nil, err
	}
	if e, ok := s.keys.Get(storeKey{merchantID, serial}); ok {
		if s.clock().Before(e.notAfter) {
			return e.pub, nil
		}
		return nil, fmt.Errorf("%w: %s expired at %s", ErrExpiredKey, serial, e.notAfter.Format(time.RFC3339))
	}
	return nil, fmt.Errorf("%w %q: not among merchant %s's platform certificates", ErrUnknownSerial, truncate(serial, 64), m.id)
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

// refresh downloads m's certificates, sharing one download among all
// concurrent callers for m. Unless force is set, the download happens only
// if mayDownload allows it for serial, the one the caller is missing. It
// waits for the shared download or for ctx, whichever comes first.
func (s *Store) refresh(ctx context.Context, m *merchant, serial string, force bool) error {
	err := s.join(ctx, m, serial, force)
	var rr errRecentlyRefreshed
	if !force && errors.As(err, &rr) && m.knows(serial) {
		// We joined a rate-limited call made for another serial, but ours
		// was genuine and evicted: it deserves a download of its own.
		err = s.join(ctx, m, serial, true)
	}
	return err
}

func (s *Store) join(ctx context.Context, m *merchant, serial string, force bool) error {
	ch := s.group.DoChan(m.id, func() (any, error) {
		if !force {
			// A download that finished just before this call started may
			// already have brought the serial: then there is nothing to do.
			if e, ok := s.keys.Peek(storeKey{m.id, serial}); ok && s.clock().Before(e.notAfter) {
				return nil, nil
			}
			if err := s.mayDownload(m, serial); err != nil {
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
		return nil, s.obtain(fctx, m, serial)
	})
	select {
	case <-ctx.Done():
		return ctx.Err() // the download goes on for the other waiters
	case r := <-ch:
		return r.Err
	}
}

func (m *merchant) knows(serial string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Contains(m.serials, serial)
}

// mayDownload says whether an unknown serial may cause a download now. It
// runs inside the merchant's singleflight call, so that callers arriving
// while a download runs join it instead of being turned away.
func (s *Store) mayDownload(m *merchant, serial string) error {
	last := m.lastAttempt.Load()
	if last == 0 {
		return nil
	}
	ago := s.clock().Sub(time.Unix(0, last))
	if m.publicKeyOnly.Load() && ago < s.opts.RefreshInterval {
		return ErrNoPlatformCertificates
	}
	if ago >= s.opts.MinRefreshInterval || m.knows(serial) {
		// A serial we had and lost to eviction is worth a download at
		// once: it was genuine, and the LRU, not an attacker, dropped it.
		return nil
	}
	rr := errRecentlyRefreshed{ago: ago, wait: s.opts.MinRefreshInterval - ago}
	if p := m.lastErr.Load(); p != nil {
		rr.last = *p
	}
	return rr
}

// maybeRefreshAhead starts one background download when m's certificates
// are older than RefreshInterval. It never blocks the caller.
func (s *Store) maybeRefreshAhead(ctx context.Context, m *merchant, now time.Time) {
	if m.aead == nil {
		return // cannot download: certificates came from AddCertificates
	}
	nowNano := now.UnixNano()
	if nowNano-m.lastSuccess.Load() < int64(s.opts.RefreshInterval) ||
		nowNano-m.lastAttempt.Load() < int64(s.opts.MinRefreshInterval) {
		return
	}
	if !m.refreshing.CompareAndSwap(false, true) {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		m.refreshing.Store(false)
		return
	}
	s.bg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.bg.Done()
		defer m.refreshing.Store(false)
		s.join(context.WithoutCancel(ctx), m, "", true) // errors leave the cache as it was
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
// minimum interval, and waits for the result or for ctx.
func (s *Store) Refresh(ctx context.Context, merchantID string) error {
	m, err := s.merchant(merchantID)
	if err != nil {
		return err
	}
	if m.aead == nil {
		return fmt.Errorf("wechatpay: merchant %s has no APIv3Key to download platform certificates", m.id)
	}
	return s.refresh(ctx, m, "", true)
}

// download fetches, checks and caches m's certificates, and shares them
// through the Cache. It runs inside the merchant's singleflight call.
func (s *Store) download(ctx context.Context, m *merchant) error {
	now := s.clock()
	m.lastAttempt.Store(now.UnixNano())
	certs, raw, err := fetchCertificates(ctx, m, s.opts.Roots, now, s.trusted(m, now))
	if errors.Is(err, ErrNoPlatformCertificates) {
		m.publicKeyOnly.Store(true)
	}
	if err != nil {
		m.lastErr.Store(&err)
		return err // the cache is left as it was
	}
	s.install(m, certs, now)
	s.putCache(ctx, m, raw, certs)
	return nil
}

// trusted returns the keys, besides a download's own certificates, that
// may have signed it: m's configured public keys and its cached valid
// certificates.
func (s *Store) trusted(m *merchant, now time.Time) func(serial string) *rsa.PublicKey {
	return func(serial string) *rsa.PublicKey {
		if k := m.publicKeys[serial]; k != nil {
			return k
		}
		if e, ok := s.keys.Peek(storeKey{m.id, serial}); ok && now.Before(e.notAfter) {
			return e.pub
		}
		return nil
	}
}

// install makes certs, checked, m's current certificates, as downloaded
// at fetched.
func (s *Store) install(m *merchant, certs []*x509.Certificate, fetched time.Time) {
	m.lastErr.Store(nil)
	m.publicKeyOnly.Store(false)
	serials := make([]string, 0, len(certs))
	var newest *x509.Certificate
	for _, c := range certs {
		serial := certSerial(c)
		serials = append(serials, serial)
		s.keys.Add(storeKey{m.id, serial}, &storedKey{pub: c.PublicKey.(*rsa.PublicKey), cert: c, notAfter: c.NotAfter, m: m})
		if newest == nil || c.NotAfter.After(newest.NotAfter) {
			newest = c
		}
	}
	m.mu.Lock()
	old := m.serials
	m.serials = serials
	m.newest = certSerial(newest)
	m.mu.Unlock()
	// Certificates WeChat Pay no longer lists are retired (PROTOCOL §4.4).
	for _, serial := range old {
		if !slices.Contains(serials, serial) {
			s.keys.Remove(storeKey{m.id, serial})
		}
	}
	m.lastSuccess.Store(fetched.UnixNano())
}

// Newest returns merchantID's valid platform certificate with the latest
// expiry, downloading certificates if none is cached. Encrypt sensitive
// request fields with it and send its serial in Wechatpay-Serial.
func (s *Store) Newest(ctx context.Context, merchantID string) (*x509.Certificate, error) {
	m, err := s.merchant(merchantID)
	if err != nil {
		return nil, err
	}
	if c := s.newestCached(m); c != nil {
		return c, nil
	}
	if m.aead == nil {
		return nil, fmt.Errorf("wechatpay: merchant %s has no platform certificates to download (no APIv3Key)", m.id)
	}
	if err := s.refresh(ctx, m, "", true); err != nil {
		return nil, err
	}
	if c := s.newestCached(m); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("wechatpay: merchant %s has no valid platform certificate", m.id)
}

// newestCached returns the valid cached certificate with the latest
// expiry, or nil when any listed one was evicted or none is valid.
func (s *Store) newestCached(m *merchant) *x509.Certificate {
	m.mu.Lock()
	serials := m.serials
	m.mu.Unlock()
	now := s.clock()
	var newest *x509.Certificate
	for _, serial := range serials {
		e, ok := s.keys.Get(storeKey{m.id, serial})
		if !ok {
			return nil
		}
		if now.Before(e.cert.NotBefore) || !now.Before(e.notAfter) {
			continue
		}
		if newest == nil || e.notAfter.After(newest.NotAfter) {
			newest = e.cert
		}
	}
	return newest
}

// Certificates returns merchantID's cached platform certificates, newest
// expiry first, without downloading.
func (s *Store) Certificates(merchantID string) []*x509.Certificate {
	m, err := s.merchant(merchantID)
	if err != nil {
		return nil
	}
	m.mu.Lock()
	serials := m.serials
	m.mu.Unlock()
	var certs []*x509.Certificate
	for _, serial := range serials {
		if e, ok := s.keys.Peek(storeKey{m.id, serial}); ok {
			certs = append(certs, e.cert)
		}
	}
	slices.SortFunc(certs, func(a, b *x509.Certificate) int { return b.NotAfter.Compare(a.NotAfter) })
	return certs
}

// requestSerial is the Wechatpay-Serial a request of merchantID should
// carry when nothing else says: its newest platform certificate, if known.
func (s *Store) requestSerial(merchantID string) string {
	v, ok := s.merchants.Load(merchantID)
	if !ok {
		return ""
	}
	m := v.(*merchant)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.newest
}

// Len returns the number of cached platform certificates.
func (s *Store) Len() int { return s.keys.Len() }
