package wechatpay

// The Store's use of a Cache and its lock (StoreOptions): only inside a
// merchant's singleflight call, never on the lookup of a cached key.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

const (
	// cacheTimeout bounds each call to the Cache or its lock, so that a slow cache
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
	// cacheBackoff is how long the Store leaves the Cache alone
	// after one failed.
	cacheBackoff = time.Second
	// maxStuckCacheCalls bounds the calls to a Cache that outlived
	// cacheTimeout and are still running: past it the Store treats the
	// Cache as down rather than start more.
	maxStuckCacheCalls = 4
)

// errCacheTimeout is the failure of a Cache call that did not return
// within cacheTimeout, or could not start because earlier ones are stuck.
var errCacheTimeout = fmt.Errorf("did not return within %s", cacheTimeout)

// boundedCache is StoreOptions.Cache as the Store uses it: every call
// bounded by cacheTimeout whatever the Cache does with its context, the
// Cache left alone for cacheBackoff after a failure, and failures
// reported to StoreOptions.CacheErrorHandler.
type boundedCache struct {
	c       Cache
	onError func(error)          // may be nil
	mono    func() time.Duration // the Store's monotonic clock
	down    atomic.Int64         // monotonic time until which c is left alone
	stuck   atomic.Int32         // calls still running past cacheTimeout
}

// cacheCall runs f, one call to the Cache or its lock, and returns its
// result, or errCacheTimeout once cacheTimeout has passed, whether or not
// the Cache honours its context. A call that outlives the bound runs on
// by itself (the Store cannot stop user code) and is counted, so that at
// most maxStuckCacheCalls of them exist at once; the Store never waits
// for one, Close included.
func cacheCall[T any](c *boundedCache, ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	var zero T
	if c.stuck.Load() >= maxStuckCacheCalls {
		return zero, errCacheTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, cacheTimeout)
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	var left atomic.Bool // set by whichever side finishes first
	go func() {
		defer cancel()
		v, err := f(ctx)
		done <- result{v, err}
		if left.Swap(true) {
			c.stuck.Add(-1) // the waiter gave up on this call
		}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		c.stuck.Add(1)
		if left.Swap(true) {
			// It returned just now: take its answer.
			c.stuck.Add(-1)
			r := <-done
			return r.v, r.err
		}
		return zero, errCacheTimeout
	}
}

func (c *boundedCache) get(ctx context.Context, key string) ([]byte, error) {
	return cacheCall(c, ctx, func(ctx context.Context) ([]byte, error) { return c.c.Get(ctx, key) })
}

func (c *boundedCache) put(ctx context.Context, key string, data []byte) error {
	_, err := cacheCall(c, ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, c.c.Put(ctx, key, data) })
	return err
}

func (c *boundedCache) delete(ctx context.Context, key string) error {
	_, err := cacheCall(c, ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, c.c.Delete(ctx, key) })
	return err
}

// up reports whether the Cache may be used: no call failed within the
// last cacheBackoff.
func (c *boundedCache) up() bool { return time.Duration(c.down.Load()) <= c.mono() }

// failed reports a failure of the Cache and leaves it alone for
// cacheBackoff.
func (c *boundedCache) failed(err error) {
	c.down.Store(int64(c.mono() + cacheBackoff))
	c.report(err)
}

func (c *boundedCache) report(err error) {
	if c.onError != nil {
		c.onError(err)
	}
}

// obtain brings r's certificates up to date, from the Cache when it holds
// a usable download, else by downloading (under the fleet's lock, if
// there is one). have, if not nil, says whether a set has what the caller
// needs. It runs inside the merchant's singleflight call.
func (s *Store) obtain(ctx context.Context, r *merchant, w *want) error {
	if s.cache == nil || !s.cache.up() {
		return s.download(ctx, r, w)
	}
	now, mono := s.clock()
	r.hist.attempt(now, mono, !w.byEviction) // a cache read counts for the rate limit
	switch s.fromCache(ctx, r, w) {
	case cacheUsed:
		return nil
	case cacheVoided:
		if w.have != nil {
			// Another instance (or this one before a restart) was told
			// RESOURCE_NOT_EXISTS lately: a lookup does not ask again.
			return ErrNoPlatformCertificates
		}
	}
	if l, ok := s.cache.c.(cacheLocker); ok && s.cache.up() {
		type lockResult struct {
			unlock func() error
			ok     bool
		}
		lr, err := cacheCall(s.cache, ctx, func(ctx context.Context) (lockResult, error) {
			unlock, ok, err := l.TryLock(ctx, r.id)
			return lockResult{unlock, ok}, err
		})
		switch ok, unlock := lr.ok, lr.unlock; {
		case err != nil:
			s.cache.failed(fmt.Errorf("wechatpay: download lock for merchant %s: %w", r.id, err))
		case ok:
			defer func() {
				_, err := cacheCall(s.cache, context.WithoutCancel(ctx), func(context.Context) (struct{}, error) { return struct{}{}, unlock() })
				if err != nil {
					s.cache.failed(fmt.Errorf("wechatpay: download lock for merchant %s: unlock: %w", r.id, err))
				}
			}()
			// The last holder may have finished between the look above
			// and the lock.
			if s.fromCache(ctx, r, w) == cacheUsed {
				return nil
			}
		default:
			if s.waitForCache(ctx, r, w) {
				return nil
			}
		}
	}
	return s.download(ctx, r, w)
}

// waitForCache polls the cache for the download of the lock's holder for
// up to lockWait, and reports whether one was used.
func (s *Store) waitForCache(ctx context.Context, r *merchant, w *want) bool {
	deadline := time.NewTimer(min(lockWait, s.opts.FetchTimeout/2))
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
		if !s.cache.up() {
			return false
		}
		switch s.fromCache(ctx, r, w) {
		case cacheUsed:
			return true
		case cacheRefused:
			return false
		}
	}
}

type cacheOutcome int

const (
	cacheNotUsed cacheOutcome = iota // nothing there, nothing newer, or the cache failed
	cacheUsed                        // installed, and it has what the caller needs
	cacheRefused                     // an entry failed the checks and was deleted
	cacheVoided                      // a void record younger than RefreshInterval and no newer download
)

// fromCache reads r's entry and installs its certificates if they pass
// every check of a fresh download and are newer than the set the Store
// holds (or it holds none).
func (s *Store) fromCache(ctx context.Context, r *merchant, w *want) cacheOutcome {
	voided := s.readVoid(ctx, r)
	notUsed := cacheNotUsed
	if now := s.wall(); !voided.IsZero() && now.Sub(voided) < s.opts.RefreshInterval {
		notUsed = cacheVoided
	}
	if !s.cache.up() {
		return notUsed // reading the void record failed just now
	}
	data, err := s.cache.get(ctx, r.id)
	if errors.Is(err, ErrCacheMiss) {
		return notUsed
	}
	if err != nil {
		s.cache.failed(fmt.Errorf("wechatpay: certificate cache for merchant %s: %w", r.id, err))
		return cacheNotUsed
	}
	now, mono := s.clock()
	keys, signedAt, err := s.checkCached(ctx, r, data, now)
	if err != nil {
		r.hist.cacheRefused.Add(1)
		s.cache.report(fmt.Errorf("%w for merchant %s: cached download refused: %w", ErrCertificateDownload, r.id, err))
		if err := s.cache.delete(ctx, r.id); err != nil {
			s.cache.failed(fmt.Errorf("wechatpay: certificate cache for merchant %s: %w", r.id, err))
		}
		return cacheRefused
	}
	age := now.Sub(signedAt)
	if age >= maxCachedAge {
		return cacheNotUsed // genuine but too old to trust; a download replaces it
	}
	if !signedAt.After(voided) {
		return notUsed // signed before WeChat Pay voided the merchant's certificates
	}
	if cur, cs := s.current(r.id); cur == r && cs != nil {
		r.hist.mu.Lock()
		ours := r.hist.successWall
		r.hist.mu.Unlock()
		if !signedAt.After(ours) {
			return cacheNotUsed // not newer than ours: ours, or one we had
		}
	}
	// Dated by WeChat Pay's signature, so that the fleet refreshes in step.
	cs, err := s.install(r, keys, "cache", signedAt, mono-age)
	if err != nil {
		return cacheNotUsed
	}
	w.got = cs
	if w.have != nil && !w.have(cs) && age >= s.opts.MinRefreshInterval {
		// A download this recent answers the caller for the whole fleet
		// (the serial is unknown); an older one may predate a new
		// certificate.
		return cacheNotUsed
	}
	return cacheUsed
}

// checkCached decodes an entry and runs every check of a fresh download
// on it, as of now for the certificates' validity, and returns the keys
// and the time WeChat Pay signed the download.
func (s *Store) checkCached(ctx context.Context, r *merchant, data []byte, now time.Time) ([]*storedKey, time.Time, error) {
	rec, err := decodeCachedDownload(data)
	if err != nil {
		return nil, time.Time{}, err
	}
	switch {
	case rec.MerchantID != r.id:
		return nil, time.Time{}, fmt.Errorf("entry was downloaded for merchant %q", wire.Truncate(rec.MerchantID, 32))
	case rec.URL != r.certURL:
		return nil, time.Time{}, fmt.Errorf("entry was downloaded from %q, not %s", wire.Truncate(rec.URL, 128), r.certURL)
	}
	sec, err := strconv.ParseInt(rec.Header.Timestamp, 10, 64)
	if err != nil || len(rec.Header.Timestamp) > 12 {
		return nil, time.Time{}, fmt.Errorf("%w: %s is not a Unix time in seconds", ErrMissingSignature, wire.HeaderTimestamp)
	}
	signedAt := time.Unix(sec, 0)
	keys, err := checkDownloadAt(ctx, r, rec.Body, rec.header(), now, signedAt, s.opts.Roots, s.trusted(r))
	if err != nil {
		return nil, time.Time{}, err
	}
	if signedAt.After(now.Add(DefaultMaxSkew)) {
		return nil, time.Time{}, fmt.Errorf("%w: entry signed at %s, in the future", ErrClockSkew, signedAt.Format(time.RFC3339))
	}
	return keys, signedAt, nil
}

// putCache stores a download that passed the checks, until its last
// certificate expires or it gets too old to be used.
func (s *Store) putCache(ctx context.Context, r *merchant, body []byte, header http.Header, keys []*storedKey, now time.Time) {
	if s.cache == nil || !s.cache.up() {
		return
	}
	rec := newCachedDownload(r.id, r.certURL, now, header, body)
	expires := now.Add(maxCachedAge)
	if sec, err := strconv.ParseInt(rec.Header.Timestamp, 10, 64); err == nil {
		expires = time.Unix(sec, 0).Add(maxCachedAge)
	}
	var last time.Time
	for _, k := range keys {
		if k.notAfter.After(last) {
			last = k.notAfter
		}
	}
	if last.Before(expires) {
		expires = last
	}
	data, err := rec.encode(expires)
	if err == nil {
		err = s.cache.put(ctx, r.id, data)
	}
	if err != nil {
		s.cache.failed(fmt.Errorf("wechatpay: certificate cache for merchant %s: %w", r.id, err))
	}
}

// readVoid reads r's void record from the Cache and notes it (see
// noteVoid), and returns the latest time r's certificates were known void,
// from the Cache or from this Store's own downloads.
func (s *Store) readVoid(ctx context.Context, r *merchant) time.Time {
	data, err := s.cache.get(ctx, voidKey(r.id))
	switch {
	case errors.Is(err, ErrCacheMiss):
	case err != nil:
		s.cache.failed(fmt.Errorf("wechatpay: certificate cache for merchant %s: void record: %w", r.id, err))
	default:
		v, err := decodeVoidRecord(data)
		switch {
		case err != nil:
			s.cache.report(fmt.Errorf("wechatpay: certificate cache for merchant %s: void record ignored: %w", r.id, err))
		case v.MerchantID != r.id || v.URL != r.certURL:
			s.cache.report(fmt.Errorf("wechatpay: certificate cache for merchant %s: void record of merchant %q at %q ignored", r.id, wire.Truncate(v.MerchantID, 32), wire.Truncate(v.URL, 128)))
		default:
			// A record from the future (a wrong clock, or a writer
			// who wants it to last) counts as now: it can only lower
			// trust.
			at := v.Voided
			if now := s.wall(); at.After(now) {
				at = now
			}
			s.noteVoid(r, at)
		}
	}
	return r.hist.voided()
}

// noteVoid records that WeChat Pay answered RESOURCE_NOT_EXISTS for r's
// certificates at wall time at (docs/protocol.md §3.3): the merchant moved
// to public-key mode, and its platform certificates obtained before are
// void. A set obtained since stays.
func (s *Store) noteVoid(r *merchant, at time.Time) {
	if r.hist.void(at) {
		s.ringMu.Lock()
		s.releaseLocked(r)
		s.ringMu.Unlock()
	}
}

// putVoid records in the Cache that r's certificates were void at now,
// and removes the download there, so that no Store sharing the Cache
// uses one signed before.
func (s *Store) putVoid(ctx context.Context, r *merchant, now time.Time) {
	if s.cache == nil || !s.cache.up() {
		return
	}
	data, err := (&voidRecord{Format: cacheFormat, Kind: voidKind, MerchantID: r.id, URL: r.certURL, Voided: now.UTC().Round(0)}).encode()
	if err == nil {
		err = s.cache.put(ctx, voidKey(r.id), data)
	}
	if err == nil {
		err = s.cache.delete(ctx, r.id)
	}
	if err != nil {
		s.cache.failed(fmt.Errorf("wechatpay: certificate cache for merchant %s: recording RESOURCE_NOT_EXISTS: %w", r.id, err))
	}
}
