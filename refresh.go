package wechatpay

// Everything that runs detached from the lookup that caused it: the
// merchant's shared download (one flight per registration), the decision
// whether a lookup may start one, refresh-ahead in the background, and
// the install of what a download or the Cache brought.

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

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

// want is what one flight is for, and what it brought: have, if not nil,
// says whether a set has what the lookup needs; byEviction, that the
// download is the one an eviction allows; got is the set installed, which
// answers the flight's waiters even if evicted meanwhile.
type want struct {
	have       func(*certSet) bool
	byEviction bool
	got        *certSet
}

// refresh downloads m's certificates, sharing one download among all
// concurrent callers for m. Unless force is set, the download happens only
// if the current set does not already satisfy have and mayDownload allows
// it for serial. It waits for the shared download or for ctx, whichever
// comes first.
func (s *Store) refresh(ctx context.Context, m *merchant, force bool, serial string, have func(*certSet) bool) (*certSet, error) {
	ch := s.group.DoChan(m.flightKey(), func() (_ any, err error) {
		// User code runs in here (Base, a KMS signer, the Cache);
		// singleflight would re-raise its panic on a goroutine nobody
		// can recover.
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("%w for merchant %s: panic during the download: %s", ErrCertificateDownload, m.id, wire.Truncate(fmt.Sprint(p), 200))
				m.hist.failed(err)
			}
		}()
		w := &want{have: have}
		if !force {
			// A download that finished just before this call started may
			// already have brought what the caller needs.
			if cur, cs := s.current(m.id); cur == m && cs != nil && have != nil && have(cs) {
				return cs, nil
			}
			if w.byEviction, err = mayDownload(m, s.monoNow(), serial, s.opts); err != nil {
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
		err = s.obtain(fctx, m, w)
		return w.got, err
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err() // the download goes on for the other waiters
	case res := <-ch:
		cs, _ := res.Val.(*certSet)
		return cs, res.Err
	}
}

// mayDownload decides, from m's history at monotonic time mono, whether a
// lookup of serial ("" for Newest) may cause a download now, and whether
// that download is the one an eviction allows. It runs inside m's flight,
// so that callers arriving while a download runs join it instead of being
// turned away.
//
// The budget: one download per MinRefreshInterval, whatever the serials
// asked for; for a merchant with a public key, failed downloads back off
// exponentially up to RefreshInterval; after RESOURCE_NOT_EXISTS, one per
// RefreshInterval. Besides, a set evicted to make room may be downloaded
// again once per MinRefreshInterval, for a serial it held (or Newest):
// eviction is not an attack, but forged serials do not get this budget.
func mayDownload(m *merchant, mono time.Duration, serial string, opts StoreOptions) (byEviction bool, err error) {
	h := m.hist
	last := time.Duration(h.lastAttempt.Load())
	if last == never {
		return false, nil
	}
	ago := mono - last
	h.mu.Lock()
	pkOnly, lastErr, failures := h.publicKeyOnly, h.lastErr, h.failures
	evictedHad := serial == "" || slices.Contains(h.evictedSerials, serial)
	h.mu.Unlock()
	if pkOnly && ago < opts.RefreshInterval {
		return false, ErrNoPlatformCertificates
	}
	wait := opts.MinRefreshInterval
	if lastErr != nil && len(m.publicKeys) > 0 {
		wait = backoff(failures, opts)
	}
	if ago >= wait {
		return false, nil
	}
	if lastErr == nil && h.evicted.Load() && evictedHad &&
		mono-time.Duration(h.lastEvictAttempt.Load()) >= opts.MinRefreshInterval {
		h.lastEvictAttempt.Store(int64(mono))
		return true, nil
	}
	return false, errRecentlyRefreshed{ago: ago, wait: wait - ago, last: lastErr}
}

// backoff is the least time between downloads for a merchant with a
// public key after failures consecutive failures: MinRefreshInterval,
// doubled for each failure after the first, up to RefreshInterval. Such a
// merchant verifies with its public key meanwhile; a certificate endpoint
// that keeps refusing (403, 5xx) is asked a few times an hour, then
// every RefreshInterval, never once a minute for ever.
func backoff(failures int, opts StoreOptions) time.Duration {
	wait, limit := opts.MinRefreshInterval, max(opts.RefreshInterval, opts.MinRefreshInterval)
	for i := 1; i < failures && wait < limit; i++ {
		wait *= 2
	}
	return min(wait, limit)
}

// rateLimited counts and reports a lookup that was refused a download.
func (s *Store) rateLimited(ctx context.Context, m *merchant, serial string, err error) {
	m.hist.rateLimited.Add(1)
	if s.opts.Events != nil {
		emit(ctx, s.opts.Events, Event{Kind: EventRateLimited, MerchantID: m.id, Serial: wire.Truncate(serial, 64), Err: err})
	}
}

// maybeRefreshAhead starts one background download when m's set is due
// (older than RefreshInterval). It never blocks the caller.
func (s *Store) maybeRefreshAhead(ctx context.Context, m *merchant, mono time.Duration) {
	if m.aead == nil || mono-time.Duration(m.hist.lastAttempt.Load()) < s.opts.MinRefreshInterval {
		return
	}
	if !m.hist.refreshing.CompareAndSwap(false, true) {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		m.hist.refreshing.Store(false)
		return
	}
	s.bg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.bg.Done()
		defer m.hist.refreshing.Store(false)
		// A failure is recorded by download, shown by Status and
		// reported; the cached set keeps serving until it expires.
		if _, err := s.refresh(context.WithoutCancel(ctx), m, true, "", nil); err != nil && s.opts.Events != nil {
			emit(ctx, s.opts.Events, Event{Kind: EventRefreshFailed, MerchantID: m.id, Host: hostOfURL(m.certURL), Err: err})
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
	m, err := s.merchant(merchantID)
	if err != nil {
		return err
	}
	if m.aead == nil {
		return fmt.Errorf("wechatpay: merchant %s has no APIv3Key to download platform certificates", m.id)
	}
	_, err = s.refresh(ctx, m, true, "", nil)
	return err
}

// download fetches, checks and holds m's certificates. It runs inside
// m's flight. A download an eviction allowed (w.byEviction) does not
// count against the rate limit unless it fails.
func (s *Store) download(ctx context.Context, m *merchant, w *want) (err error) {
	now, mono := s.clock()
	m.hist.attempt(now, mono, !w.byEviction)
	m.hist.downloads.Add(1)
	var keys []*storedKey
	defer func() {
		if err != nil {
			if !errors.Is(err, ErrCertificateDownload) {
				err = fmt.Errorf("%w for merchant %s: %w", ErrCertificateDownload, m.id, err)
			}
			m.hist.failed(err)
			if w.byEviction {
				m.hist.lastAttempt.Store(int64(mono)) // failures stay at one per interval
			}
		}
		if s.opts.Events != nil {
			ev := Event{Kind: EventCertificateDownload, Time: now, MerchantID: m.id, Host: hostOfURL(m.certURL), Duration: s.monoNow() - mono, Err: err}
			for _, k := range keys {
				ev.Serials = append(ev.Serials, k.serial)
			}
			emit(ctx, s.opts.Events, ev)
		}
	}()
	body, header, err := fetchCertificates(ctx, m)
	if m.superseded.Load() {
		return errSuperseded
	}
	if errors.Is(err, ErrNoPlatformCertificates) {
		// The merchant moved to public-key mode: its platform
		// certificates are void (docs/protocol.md §3.3), here and, by
		// the Cache, everywhere.
		s.noteVoid(m, now)
		s.putVoid(ctx, m, now)
		return err
	}
	if err != nil {
		return err // the cache is left as it was
	}
	checked, err := checkDownload(ctx, m, body, header, now, s.opts.Roots, s.trusted(m))
	if err != nil {
		return err
	}
	if w.got, err = s.install(m, checked, "download", now, mono); err != nil {
		return err
	}
	keys = checked
	s.putCache(ctx, m, body, header, keys, now)
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
// may have signed it: m's configured public keys and its valid cached
// certificates.
func (s *Store) trusted(m *merchant) func(serial string) *rsa.PublicKey {
	return func(serial string) *rsa.PublicKey {
		if k := m.publicKeys[serial]; k != nil {
			return k
		}
		if cur, cs := s.current(m.id); cur == m && cs != nil {
			if k := cs.valid(strings.ToUpper(serial), s.monoNow()); k != nil {
				return k.pub
			}
		}
		return nil
	}
}

// install makes keys, checked, m's certificate set, as obtained (from
// source) at wall time wall and monotonic time mono.
func (s *Store) install(m *merchant, keys []*storedKey, source string, wall time.Time, mono time.Duration) (*certSet, error) {
	refreshAt := neverDue
	if m.aead != nil {
		refreshAt = mono + s.opts.RefreshInterval
	}
	cs := newCertSet(keys, source, wall, mono, refreshAt)
	if !s.hold(m, cs) {
		return nil, errSuperseded // unregistered or replaced meanwhile
	}
	m.hist.succeeded(wall, mono)
	return cs, nil
}
