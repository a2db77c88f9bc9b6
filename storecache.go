package wechatpay

// The Store's use of a Cache and a Locker (StoreOptions): only inside a
// merchant's singleflight call, never on the lookup of a cached key.

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"time"
)

const (
	// cacheTimeout bounds each Cache or Locker call, so that a slow cache
	// delays a download by little more than this.
	cacheTimeout = 500 * time.Millisecond
	// maxCachedAge is the oldest cached download, by its signed
	// timestamp, that the Store uses: a genuine old download replayed by
	// whoever can write the cache cannot bring back a certificate WeChat
	// Pay retired more than this ago. A fleet refreshes every
	// RefreshInterval (under 12 h), well within it.
	maxCachedAge = 2 * maxRefreshInterval
	// lockWait bounds how long a Store that did not get the download lock
	// waits for the holder's download to appear in the cache.
	lockWait = 2 * time.Second
)

// obtain brings m's certificates up to date, from the Cache when it holds
// a usable download, else by downloading (under the fleet's lock, if
// there is one). serial is the certificate the caller misses, or "". It
// runs inside the merchant's singleflight call.
func (s *Store) obtain(ctx context.Context, m *merchant, serial string) error {
	if s.opts.Cache == nil {
		return s.download(ctx, m)
	}
	m.lastAttempt.Store(s.clock().UnixNano())
	if s.fromCache(ctx, m, serial) == cacheUsed {
		return nil
	}
	if l := s.opts.Locker; l != nil {
		lctx, cancel := context.WithTimeout(ctx, cacheTimeout)
		unlock, ok, err := l.TryLock(lctx, m.id)
		cancel()
		switch {
		case err != nil:
			s.cacheError(fmt.Errorf("wechatpay: download lock for merchant %s: %w", m.id, err))
		case ok:
			defer func() {
				if err := unlock(); err != nil {
					s.cacheError(fmt.Errorf("wechatpay: download lock for merchant %s: unlock: %w", m.id, err))
				}
			}()
			// The last holder may have finished between the look above
			// and the lock.
			if s.fromCache(ctx, m, serial) == cacheUsed {
				return nil
			}
		default:
			if s.waitForCache(ctx, m, serial) {
				return nil
			}
		}
	}
	return s.download(ctx, m)
}

// waitForCache polls the cache for the download of the lock's holder for
// up to lockWait, and reports whether one was used.
func (s *Store) waitForCache(ctx context.Context, m *merchant, serial string) bool {
	wait := min(lockWait, s.opts.FetchTimeout/2)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for pause := 10 * time.Millisecond; ; pause = min(2*pause, 200*time.Millisecond) {
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-deadline.C:
			t.Stop()
			return false
		case <-t.C:
		}
		switch s.fromCache(ctx, m, serial) {
		case cacheUsed:
			return true
		case cacheRejected:
			return false
		}
	}
}

type cacheOutcome int

const (
	cacheNotUsed  cacheOutcome = iota // nothing there, nothing newer, or the cache failed
	cacheUsed                         // installed
	cacheRejected                     // an entry failed the checks and was deleted
)

// fromCache reads m's entry and installs its certificates if they pass
// every check of a fresh download and are newer than what the Store holds
// (or it holds none).
func (s *Store) fromCache(ctx context.Context, m *merchant, serial string) cacheOutcome {
	gctx, cancel := context.WithTimeout(ctx, cacheTimeout)
	data, err := s.opts.Cache.Get(gctx, m.id)
	cancel()
	if errors.Is(err, ErrCacheMiss) {
		return cacheNotUsed
	}
	if err != nil {
		s.cacheError(fmt.Errorf("wechatpay: certificate cache for merchant %s: %w", m.id, err))
		return cacheNotUsed
	}
	now := s.clock()
	certs, signedAt, err := s.checkCached(ctx, m, data, now)
	if err != nil {
		s.cacheRejected.Add(1)
		s.cacheError(fmt.Errorf("%w for merchant %s: cached download refused: %w", ErrCertificateDownload, m.id, err))
		dctx, cancel := context.WithTimeout(ctx, cacheTimeout)
		defer cancel()
		if err := s.opts.Cache.Delete(dctx, m.id); err != nil {
			s.cacheError(fmt.Errorf("wechatpay: certificate cache for merchant %s: %w", m.id, err))
		}
		return cacheRejected
	}
	age := now.Sub(signedAt)
	if age >= maxCachedAge {
		return cacheNotUsed // genuine but too old to trust; a download replaces it
	}
	if s.holdsAll(m) && !signedAt.After(time.Unix(0, m.lastSuccess.Load())) {
		return cacheNotUsed // not newer than ours: ours, or one we had
	}
	s.install(m, certs, signedAt)
	if serial != "" && !m.knows(serial) && age >= s.opts.MinRefreshInterval {
		// A download this recent without the serial answers the caller
		// (the serial is unknown), fleet-wide; an older one may predate
		// a new certificate.
		return cacheNotUsed
	}
	return cacheUsed
}

// holdsAll reports whether every certificate of m's last download is in
// memory (none was evicted).
func (s *Store) holdsAll(m *merchant) bool {
	m.mu.Lock()
	serials := m.serials
	m.mu.Unlock()
	for _, serial := range serials {
		if !s.keys.Contains(storeKey{m.id, serial}) {
			return false
		}
	}
	return len(serials) > 0
}

// checkCached decodes an entry and runs every check of a fresh download
// on it, as of now for the certificates' validity, and returns the
// certificates and the time WeChat Pay signed the download.
func (s *Store) checkCached(ctx context.Context, m *merchant, data []byte, now time.Time) ([]*x509.Certificate, time.Time, error) {
	rec, err := decodeCachedDownload(data)
	if err != nil {
		return nil, time.Time{}, err
	}
	switch {
	case rec.MerchantID != m.id:
		return nil, time.Time{}, fmt.Errorf("entry was downloaded for merchant %q", truncate(rec.MerchantID, 32))
	case rec.URL != m.certURL:
		return nil, time.Time{}, fmt.Errorf("entry was downloaded from %q, not %s", truncate(rec.URL, 128), m.certURL)
	}
	sec, err := strconv.ParseInt(rec.Header.Timestamp, 10, 64)
	if err != nil || len(rec.Header.Timestamp) > 12 {
		return nil, time.Time{}, fmt.Errorf("%w: %s is not a Unix time in seconds", ErrMissingSignature, HeaderTimestamp)
	}
	signedAt := time.Unix(sec, 0)
	certs, err := checkDownload(ctx, m, rec.header(), rec.Body, s.opts.Roots, now, signedAt, s.trusted(m, now))
	if err != nil {
		return nil, time.Time{}, err
	}
	if signedAt.After(now.Add(DefaultMaxSkew)) {
		return nil, time.Time{}, fmt.Errorf("%w: entry signed at %s, in the future", ErrClockSkew, signedAt.Format(time.RFC3339))
	}
	return certs, signedAt, nil
}

// putCache stores a download that passed the checks, until its last
// certificate expires or it gets too old to be used.
func (s *Store) putCache(ctx context.Context, m *merchant, raw *cachedDownload, certs []*x509.Certificate) {
	if s.opts.Cache == nil || raw == nil {
		return
	}
	expires := raw.Fetched.Add(maxCachedAge)
	if sec, err := strconv.ParseInt(raw.Header.Timestamp, 10, 64); err == nil {
		expires = time.Unix(sec, 0).Add(maxCachedAge)
	}
	var last time.Time
	for _, c := range certs {
		if c.NotAfter.After(last) {
			last = c.NotAfter
		}
	}
	if last.Before(expires) {
		expires = last
	}
	data, err := raw.encode(expires)
	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, cacheTimeout)
		err = s.opts.Cache.Put(pctx, m.id, data)
		cancel()
	}
	if err != nil {
		s.cacheError(fmt.Errorf("wechatpay: certificate cache for merchant %s: %w", m.id, err))
	}
}

func (s *Store) cacheError(err error) {
	if h := s.opts.CacheErrorHandler; h != nil {
		h(err)
	}
}
