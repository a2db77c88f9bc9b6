package wechatpay_test

// The attacks of issue 16 on the Store, played over loopback against the
// simulator: a cache that would revive certificates WeChat Pay voided, a
// cache entry that never returns, a Store too small for its merchants,
// and a certificate endpoint that keeps refusing a public-key merchant.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// certGate stands on loopback between Stores and the simulator: it
// forwards everything, except that it answers the certificate endpoint
// with the status set (0: forward) as WeChat Pay would, and counts the
// certificate requests it saw.
type certGate struct {
	*httptest.Server
	status    atomic.Int32
	downloads atomic.Int32
	hold      func() // if set, runs before each certificate request is answered
}

func newCertGate(t *testing.T, srv *wechatpaytest.Server) *certGate {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	g := &certGate{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/certificates") {
			g.downloads.Add(1)
			if g.hold != nil {
				g.hold()
			}
			if st := int(g.status.Load()); st != 0 {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(st)
				code := map[int]string{404: "RESOURCE_NOT_EXISTS", 403: "NO_AUTH", 503: "SYSTEM_ERROR"}[st]
				fmt.Fprintf(w, `{"code":%q,"message":"refused by the test"}`, code)
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(g.Close)
	return g
}

// config is merchant id's configuration through the gate, with its
// WeChat Pay public key when withPublicKey.
func (g *certGate) config(srv *wechatpaytest.Server, id string, withPublicKey bool) wechatpay.Config {
	cfg := srv.MerchantConfig(id)
	cfg.BaseURL, cfg.Base = g.URL, g.Client().Transport
	if withPublicKey {
		var m wechatpaytest.Merchant
		if id == srv.Merchant().ID {
			m = srv.Merchant()
		}
		cfg.PublicKeyID, cfg.PublicKey = m.PublicKeyID, m.PublicKey
	}
	return cfg
}

// monoClock is a Store clock whose wall time is real (the simulator signs
// with real time) and whose monotonic time moves only when told.
type monoClock struct{ d atomic.Int64 }

func (c *monoClock) install(s *wechatpay.Store) {
	wechatpay.SetStoreClock(s, time.Now, func() time.Duration { return time.Duration(c.d.Load()) })
}
func (c *monoClock) advance(d time.Duration) { c.d.Add(int64(d)) }

// storeWith returns a Store closed at the end of the test.
func storeWith(t *testing.T, opts wechatpay.StoreOptions, clock *monoClock) *wechatpay.Store {
	t.Helper()
	s, err := wechatpay.NewStore(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if clock != nil {
		clock.install(s)
	}
	return s
}

// echoThrough makes a signed call for cfg through s and says whether its
// response verified.
func echoThrough(t *testing.T, s *wechatpay.Store, cfg wechatpay.Config) error {
	t.Helper()
	cfg.Store = s
	tr, err := wechatpay.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Get(cfg.BaseURL + "/v3/echo/pk")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func pkOnly(s *wechatpay.Store, id string) bool {
	st := s.Status(id)
	return len(st) == 1 && st[0].PublicKeyOnly
}

// TestVoidedCertificatesStayVoidAcrossDirCache: after RESOURCE_NOT_EXISTS,
// neither another Store on the same DirCache, nor this Store later, nor
// this Store after a restart trusts a platform certificate downloaded
// before, even when the old download is put back in the cache (by a
// stale writer or whoever can write the directory); a newer download
// that lists certificates again restores them.
func TestVoidedCertificatesStayVoidAcrossDirCache(t *testing.T) {
	srv := newSandbox(t, wechatpaytest.WithPublicKey())
	gate := newCertGate(t, srv)
	id := srv.Merchant().ID
	cfg := gate.config(srv, id, true)
	platform := srv.SigningSerial(id)
	dir := t.TempDir()
	ctx := context.Background()
	opts := wechatpay.StoreOptions{Cache: wechatpay.DirCache(dir), RefreshInterval: time.Hour}
	var clockA monoClock
	a := storeWith(t, opts, &clockA)
	if err := a.Register(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := a.PublicKey(ctx, id, platform); err != nil {
		t.Fatalf("before the switch: %v", err)
	}
	old, err := os.ReadFile(filepath.Join(dir, id))
	if err != nil {
		t.Fatalf("the download was not cached: %v", err)
	}

	// The merchant moves to its public key: WeChat Pay voids the
	// certificates.
	gate.status.Store(404)
	if err := a.Refresh(ctx, id); !errors.Is(err, wechatpay.ErrNoPlatformCertificates) {
		t.Fatalf("Refresh after the switch = %v; want ErrNoPlatformCertificates", err)
	}
	// The old download comes back into the cache.
	if err := os.WriteFile(filepath.Join(dir, id), old, 0o600); err != nil {
		t.Fatal(err)
	}
	before := gate.downloads.Load()

	var clockB, clockC monoClock
	b := storeWith(t, opts, &clockB) // another instance
	c := storeWith(t, opts, &clockC) // this one after a restart
	for _, s := range []*wechatpay.Store{b, c} {
		if err := s.Register(cfg); err != nil {
			t.Fatal(err)
		}
	}
	clockA.advance(time.Hour + time.Minute) // this one, later
	for name, s := range map[string]*wechatpay.Store{"this Store later": a, "another Store": b, "after a restart": c} {
		if k, err := s.PublicKey(ctx, id, platform); err == nil || k != nil {
			t.Errorf("%s: voided certificate %s trusted", name, platform)
		} else if !errors.Is(err, wechatpay.ErrUnknownSerial) {
			t.Errorf("%s: %v; want ErrUnknownSerial", name, err)
		}
		if !pkOnly(s, id) {
			t.Errorf("%s: Status does not say public-key only: %+v", name, s.Status(id))
		}
		if err := echoThrough(t, s, cfg); err != nil {
			t.Errorf("%s: a response signed with the public key: %v", name, err)
		}
	}
	// All three learnt it from the cache without asking again: the void
	// record is younger than RefreshInterval.
	if got := gate.downloads.Load() - before; got != 0 {
		t.Errorf("%d certificate requests after the switch; want 0", got)
	}

	// WeChat Pay lists certificates again: a newer download restores them
	// everywhere.
	gate.status.Store(0)
	time.Sleep(time.Second) // the download's timestamp (whole seconds) must follow the 404
	if err := a.Refresh(ctx, id); err != nil {
		t.Fatal(err)
	}
	clockB.advance(time.Hour + time.Minute)
	for name, s := range map[string]*wechatpay.Store{"the Store that downloaded": a, "another Store": b} {
		if _, err := s.PublicKey(ctx, id, platform); err != nil {
			t.Errorf("%s, after certificates are listed again: %v", name, err)
		}
		if pkOnly(s, id) {
			t.Errorf("%s: still public-key only", name)
		}
	}
}

// TestFIFOInDirCache: a named pipe where an entry belongs is refused
// without blocking, and the Store downloads instead.
func TestFIFOInDirCache(t *testing.T) {
	srv := newSandbox(t)
	id := srv.Merchant().ID
	dir := t.TempDir()
	for _, name := range []string{id, id + "%2Fvoid"} {
		if err := mkfifo(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := wechatpay.DirCache(dir).Get(context.Background(), id); err == nil || errors.Is(err, wechatpay.ErrCacheMiss) {
		t.Fatalf("Get of a FIFO = %v; want an error that is not a miss", err)
	}
	var mu sync.Mutex
	var errs []error
	s := storeWith(t, wechatpay.StoreOptions{Cache: wechatpay.DirCache(dir), CacheErrorHandler: func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}}, nil)
	if err := s.Register(srv.Config()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PublicKey(context.Background(), id, srv.SigningSerial(id)); err != nil {
		t.Fatalf("lookup with a FIFO in the cache: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(errs) == 0 || !strings.Contains(errs[0].Error(), "not a regular file") {
		t.Errorf("CacheErrorHandler got %v; want the FIFO reported", errs)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestEvictedMerchantsComeBack: a Store of Size 4 serves 8 merchants in
// turn. Every genuine call verifies (an eviction may cost one extra
// download per MinRefreshInterval), while forged serials, asked as often,
// cause no download at all; Status and events say the Store is too small.
func TestEvictedMerchantsComeBack(t *testing.T) {
	srv := newSandbox(t)
	ids := []string{srv.Merchant().ID}
	for range 7 {
		ids = append(ids, srv.AddMerchant().ID)
	}
	var tooSmall atomic.Int32
	var clock monoClock
	const interval = 10 * time.Second
	s := storeWith(t, wechatpay.StoreOptions{Size: 4, MinRefreshInterval: interval, Events: func(_ context.Context, ev wechatpay.Event) {
		if ev.Kind == wechatpay.EventStoreTooSmall {
			tooSmall.Add(1)
		}
	}}, &clock)
	clients := map[string]*http.Client{}
	for _, id := range ids {
		cfg := srv.MerchantConfig(id)
		cfg.Store = s
		tr, err := wechatpay.NewTransport(cfg)
		if err != nil {
			t.Fatal(err)
		}
		clients[id] = &http.Client{Transport: tr}
	}
	ctx := context.Background()
	const rounds = 8
	for round := range rounds {
		for _, id := range ids {
			for i := range 3 {
				resp, err := clients[id].Get(fmt.Sprintf("%s/v3/echo/%d", srv.URL, i))
				if err != nil {
					t.Fatalf("round %d, merchant %s: genuine call: %v", round, id, err)
				}
				resp.Body.Close()
				if _, err := s.PublicKey(ctx, id, fmt.Sprintf("%040X", round*100+i)); !errors.Is(err, wechatpay.ErrUnknownSerial) {
					t.Fatalf("round %d: forged serial: %v; want ErrUnknownSerial", round, err)
				}
			}
		}
		clock.advance(interval / 2)
	}
	for _, id := range ids {
		// One download per round: the interval's own and, in between,
		// the one an eviction allows; forged serials add none.
		if got := srv.MerchantCertificateDownloads(id); got != rounds {
			t.Errorf("merchant %s: %d downloads in %d rounds; want %d", id, got, rounds, rounds)
		}
		if st := s.Status(id)[0]; st.Evictions == 0 {
			t.Errorf("merchant %s: Status shows no eviction", id)
		}
	}
	if tooSmall.Load() == 0 {
		t.Error("no store_too_small event")
	}
}

// TestRefusingEndpointBacksOff: a public-key merchant whose certificate
// endpoint answers 403 or 503 is asked a few times a day, not once per
// MinRefreshInterval, however many platform serials are looked up; its
// public key keeps verifying.
func TestRefusingEndpointBacksOff(t *testing.T) {
	for _, status := range []int32{403, 503} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := newSandbox(t, wechatpaytest.WithPublicKey())
			gate := newCertGate(t, srv)
			gate.status.Store(status)
			id := srv.Merchant().ID
			cfg := gate.config(srv, id, true)
			var clock monoClock
			s := storeWith(t, wechatpay.StoreOptions{}, &clock) // defaults: 1 min, 6 h
			if err := s.Register(cfg); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for i := range 24 * 60 { // a day, a lookup a minute
				if _, err := s.PublicKey(ctx, id, fmt.Sprintf("%040X", i)); err == nil {
					t.Fatal("forged serial found")
				}
				clock.advance(time.Minute)
			}
			// 1, 1, 2, 4, ... 256 minutes (9 tries in 8.5 h), then every
			// 6 h: 12 in a day, against 1,440 once a minute.
			if got := gate.downloads.Load(); got > 13 || got < 10 {
				t.Errorf("%d certificate requests in a day; want 10 to 13", got)
			}
			if err := echoThrough(t, s, cfg); err != nil {
				t.Errorf("a response signed with the public key: %v", err)
			}
			if st := s.Status(id)[0]; st.LastError == nil {
				t.Error("Status shows no error")
			}
		})
	}
}
