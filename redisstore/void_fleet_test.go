package redisstore_test

// Issue 16, item 1, on a real Redis: after WeChat Pay answers
// RESOURCE_NOT_EXISTS for a merchant, no Store of the fleet trusts a
// platform certificate downloaded before, even when the old download is
// written back, until WeChat Pay lists certificates again.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/redisstore"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// voidGate forwards to the simulator but can answer its certificate
// endpoint 404 RESOURCE_NOT_EXISTS, as WeChat Pay does once a merchant
// has moved to its public key; it counts certificate requests.
type voidGate struct {
	*httptest.Server
	void      atomic.Bool
	downloads atomic.Int32
}

func newVoidGate(t *testing.T, srv *wechatpaytest.Server) *voidGate {
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	g := &voidGate{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/certificates") {
			g.downloads.Add(1)
			if g.void.Load() {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusNotFound)
				fmt.Fprint(w, `{"code":"RESOURCE_NOT_EXISTS","message":"无可用的平台证书"}`)
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(g.Close)
	return g
}

func TestFleetVoidedCertificates(t *testing.T) {
	r := startRedis(t)
	srv := wechatpaytest.NewServer(wechatpaytest.WithPublicKey())
	t.Cleanup(srv.Close)
	srv.Handle("/v3/echo", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{}`)
	}))
	gate := newVoidGate(t, srv)
	m := srv.Merchant()
	cfg := srv.Config()
	cfg.BaseURL, cfg.Base = gate.URL, gate.Client().Transport
	cfg.PublicKeyID, cfg.PublicKey = m.PublicKeyID, m.PublicKey
	platform := srv.SigningSerial(m.ID)
	ctx := context.Background()
	cache := &redisstore.Cache{Client: r.Client()}
	start := func() *wechatpay.Store {
		s, err := wechatpay.NewStore(wechatpay.StoreOptions{Cache: &redisstore.Cache{Client: r.Client()}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Register(cfg); err != nil {
			t.Fatal(err)
		}
		return s
	}
	publicKeyWorks := func(name string, s *wechatpay.Store) {
		c := cfg
		c.Store = s
		tr, err := wechatpay.NewTransport(c)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Transport: tr}).Get(gate.URL + "/v3/echo")
		if err != nil {
			t.Errorf("%s: a response signed with the public key: %v", name, err)
			return
		}
		resp.Body.Close()
	}

	a, b := start(), start()
	for name, s := range map[string]*wechatpay.Store{"a": a, "b": b} {
		if _, err := s.PublicKey(ctx, m.ID, platform); err != nil {
			t.Fatalf("%s before the switch: %v", name, err)
		}
	}
	if n := gate.downloads.Load(); n != 1 {
		t.Fatalf("%d downloads for two instances; want 1 (b reads a's)", n)
	}
	old, err := cache.Get(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}

	// The merchant moves to its public key.
	gate.void.Store(true)
	if err := a.Refresh(ctx, m.ID); !errors.Is(err, wechatpay.ErrNoPlatformCertificates) {
		t.Fatalf("a: Refresh after the switch = %v; want ErrNoPlatformCertificates", err)
	}
	// A stale writer (or whoever can write Redis) puts the old download
	// back.
	if err := cache.Put(ctx, m.ID, old); err != nil {
		t.Fatal(err)
	}
	// b holds the old set in memory until it next consults the fleet:
	// its refresh finds the void record and drops it.
	if err := b.Refresh(ctx, m.ID); !errors.Is(err, wechatpay.ErrNoPlatformCertificates) {
		t.Fatalf("b: Refresh after the switch = %v; want ErrNoPlatformCertificates", err)
	}
	before := gate.downloads.Load()
	c := start() // a after a restart
	for name, s := range map[string]*wechatpay.Store{"a": a, "b": b, "a restarted": c} {
		if _, err := s.PublicKey(ctx, m.ID, platform); !errors.Is(err, wechatpay.ErrUnknownSerial) {
			t.Errorf("%s: voided certificate %s: %v; want ErrUnknownSerial", name, platform, err)
		}
		if st := s.Status(m.ID); len(st) != 1 || !st[0].PublicKeyOnly {
			t.Errorf("%s: Status does not say public-key only", name)
		}
		publicKeyWorks(name, s)
	}
	if n := gate.downloads.Load() - before; n != 0 {
		t.Errorf("%d certificate requests by lookups after the switch; want 0 (the fleet knows)", n)
	}

	// WeChat Pay lists certificates again.
	gate.void.Store(false)
	time.Sleep(time.Second) // the download's timestamp (whole seconds) must follow the 404
	if err := a.Refresh(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*wechatpay.Store{"a": a, "a restarted": c} {
		if _, err := s.PublicKey(ctx, m.ID, platform); err != nil {
			t.Errorf("%s, after certificates are listed again: %v", name, err)
		}
	}
}
