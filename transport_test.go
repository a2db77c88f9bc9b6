package wechatpay_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// echo answers with what it received, so a test can see the request as it
// arrived on the wire.
func echo(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"method": r.Method,
		"uri":    r.RequestURI,
		"body":   string(body),
		"serial": r.Header.Get("Wechatpay-Serial"),
		"accept": r.Header.Get("Accept"),
		"ua":     r.Header.Get("User-Agent"),
	})
}

type echoed struct {
	Method, URI, Body, Serial, Accept, UA string
}

func newSandbox(t *testing.T, opts ...wechatpaytest.Option) *wechatpaytest.Server {
	t.Helper()
	srv := wechatpaytest.NewServer(opts...)
	t.Cleanup(srv.Close)
	srv.Handle("/v3/echo/", http.HandlerFunc(echo))
	return srv
}

// newClient returns a client for cfg and the store behind it (closed at the
// end of the test).
func newClient(t *testing.T, cfg wechatpay.Config, opts wechatpay.StoreOptions) (*http.Client, *wechatpay.Store) {
	t.Helper()
	if cfg.Store == nil {
		s, err := wechatpay.NewStore(opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		cfg.Store = s
	}
	tr, err := wechatpay.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: tr}, cfg.Store
}

func decodeEcho(t *testing.T, resp *http.Response) echoed {
	t.Helper()
	defer resp.Body.Close()
	var e echoed
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("decoding echo: %v", err)
	}
	return e
}

func TestSignedRequestsAcceptedBySandbox(t *testing.T) {
	srv := newSandbox(t)
	client, _ := newClient(t, srv.Config(), wechatpay.StoreOptions{})
	q := url.Values{
		"space":   {"a b  c"},
		"chinese": {"深圳腾大-QQ公仔"},
		"json":    {`{"k":"v","n":[1,2]}`},
	}.Encode()
	tests := []struct {
		name, method, url, body string
	}{
		{"GET", "GET", srv.URL + "/v3/echo/x", ""},
		{"GET query", "GET", srv.URL + "/v3/echo/q?" + q, ""},
		{"GET escaped path", "GET", srv.URL + "/v3/echo/a%20b/%E4%B8%AD", ""},
		{"GET raw query", "GET", srv.URL + "/v3/echo/q?x=a%20b&y=%7B%22k%22%3A1%7D", ""},
		{"POST JSON", "POST", srv.URL + "/v3/echo/p", `{"description":"Image形象店-深圳腾大-QQ公仔","amount":{"total":100}}`},
		{"POST JSON with newline", "POST", srv.URL + "/v3/echo/p?" + q, "{\"a\":1}\n"},
		{"PUT", "PUT", srv.URL + "/v3/echo/put", `{"x":"y"}`},
		{"PATCH", "PATCH", srv.URL + "/v3/echo/patch", `{"x":"y"}`},
		{"DELETE with body", "DELETE", srv.URL + "/v3/echo/del", `{"x":"y"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, _ := http.NewRequest(tc.method, tc.url, body)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.method, tc.url, err)
			}
			if resp.StatusCode != 200 {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("%s %s: status %d: %s", tc.method, tc.url, resp.StatusCode, b)
			}
			if !wechatpay.IsVerified(resp) {
				t.Error("IsVerified = false for a 2xx response")
			}
			e := decodeEcho(t, resp)
			u, _ := url.Parse(tc.url)
			if e.Method != tc.method || e.URI != u.RequestURI() || e.Body != tc.body {
				t.Errorf("sandbox saw %s %s %q; want %s %s %q", e.Method, e.URI, e.Body, tc.method, u.RequestURI(), tc.body)
			}
			if e.Accept != "application/json" || !strings.Contains(e.UA, "wechatpay") {
				t.Errorf("Accept %q, User-Agent %q: want application/json and a descriptive agent", e.Accept, e.UA)
			}
		})
	}
}

// countingBody counts Close calls.
type countingBody struct {
	io.Reader
	closes atomic.Int32
}

func (b *countingBody) Close() error { b.closes.Add(1); return nil }

func TestRedirectReplaysBodyAndRequestUnchanged(t *testing.T) {
	srv := newSandbox(t)
	srv.Handle("POST /v3/old", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/v3/echo/new", http.StatusTemporaryRedirect)
	}))
	client, _ := newClient(t, srv.Config(), wechatpay.StoreOptions{})
	const payload = `{"out_trade_no":"T1","amount":{"total":1}}`
	var bodies []*countingBody
	newBody := func() *countingBody {
		b := &countingBody{Reader: strings.NewReader(payload)}
		bodies = append(bodies, b)
		return b
	}
	req, _ := http.NewRequest("POST", srv.URL+"/v3/old?a=1", newBody())
	req.GetBody = func() (io.ReadCloser, error) { return newBody(), nil }
	req.ContentLength = int64(len(payload))
	req.Header.Set("X-Trace", "abc")
	before := req.Clone(context.Background())

	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	e := decodeEcho(t, resp)
	if e.URI != "/v3/echo/new" || e.Body != payload || e.Method != "POST" {
		t.Errorf("after 307: %s %s %q; want POST /v3/echo/new with the body replayed", e.Method, e.URI, e.Body)
	}
	if req.URL.String() != before.URL.String() || fmt.Sprint(req.Header) != fmt.Sprint(before.Header) {
		t.Errorf("caller's request changed: %v %v; was %v %v", req.URL, req.Header, before.URL, before.Header)
	}
	if req.Header.Get("Authorization") != "" {
		t.Error("caller's request got an Authorization header")
	}
	if len(bodies) != 2 {
		t.Fatalf("bodies made = %d; want 2 (original and replay)", len(bodies))
	}
	// The Transport closes each body once; http.Client closes a hop's
	// body once more after following a redirect, which io.Closer allows.
	for i, b := range bodies {
		if n := b.closes.Load(); n < 1 {
			t.Errorf("body %d never closed", i)
		}
	}
}

// closeCheckingBase records the response bodies Base handed out.
type closeCheckingBase struct {
	base   http.RoundTripper
	mu     sync.Mutex
	bodies []*countingBody
	err    error // if set, RoundTrip fails with it
}

func (c *closeCheckingBase) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.err != nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, c.err
	}
	resp, err := c.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	b := &countingBody{Reader: resp.Body}
	orig := resp.Body
	resp.Body = struct {
		io.Reader
		io.Closer
	}{b, closerFunc(func() error { b.closes.Add(1); return orig.Close() })}
	c.mu.Lock()
	c.bodies = append(c.bodies, b)
	c.mu.Unlock()
	return resp, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func TestVerificationFailures(t *testing.T) {
	tests := []struct {
		name   string
		fault  wechatpaytest.Fault
		offset time.Duration
		want   error
	}{
		{"tampered body", wechatpaytest.FaultTamperBody, 0, wechatpay.ErrBadSignature},
		{"tampered timestamp", wechatpaytest.FaultTamperTimestamp, 0, wechatpay.ErrBadSignature},
		{"wrong serial", wechatpaytest.FaultWrongSerial, 0, wechatpay.ErrBadSignature},
		{"skew +6 min", wechatpaytest.FaultNone, 6 * time.Minute, wechatpay.ErrClockSkew},
		{"skew -6 min", wechatpaytest.FaultNone, -6 * time.Minute, wechatpay.ErrClockSkew},
		{"probe", wechatpaytest.FaultProbe, 0, wechatpay.ErrSignatureProbe},
		{"invalid base64", wechatpaytest.FaultInvalidBase64, 0, wechatpay.ErrBadSignature},
		{"missing headers", wechatpaytest.FaultNoHeaders, 0, wechatpay.ErrMissingSignature},
		{"unknown serial", wechatpaytest.FaultRandomSerial, 0, wechatpay.ErrUnknownSerial},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSandbox(t)
			srv.AddCertificate(srv.Merchant().ID) // a second listed serial for "wrong serial"
			cfg := srv.Config()
			cc := &closeCheckingBase{base: cfg.Base}
			cfg.Base = cc
			client, _ := newClient(t, cfg, wechatpay.StoreOptions{})
			// Warm the store, so that failures are about the response.
			resp, err := client.Get(srv.URL + "/v3/echo/warm")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()

			srv.SetFault(tc.fault)
			srv.SetClockOffset(tc.offset)
			resp, err = client.Get(srv.URL + "/v3/echo/x")
			if resp != nil {
				resp.Body.Close()
				t.Fatalf("got a response (status %d) with a failed verification", resp.StatusCode)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("error = %v; want %v", err, tc.want)
			}
			var ve *wechatpay.VerifyError
			if !errors.As(err, &ve) || ve.MerchantID != cfg.MerchantID || ve.RequestID == "" && tc.fault != wechatpaytest.FaultNoHeaders {
				t.Errorf("error %v: want a *VerifyError naming the merchant and Request-ID", err)
			}
			for _, other := range tests {
				if other.want != tc.want && errors.Is(err, other.want) {
					t.Errorf("error %v also matches %v", err, other.want)
				}
			}
			cc.mu.Lock()
			defer cc.mu.Unlock()
			for i, b := range cc.bodies {
				if b.closes.Load() != 1 {
					t.Errorf("response body %d closed %d times; want 1", i, b.closes.Load())
				}
			}
		})
	}
}

func TestRequestBodyClosedOnErrorPaths(t *testing.T) {
	srv := newSandbox(t)
	srv.Handle("/v3/big", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("x"), 2<<10))
	}))
	cfg := srv.Config()
	cfg.MaxBodySize = 1 << 10
	good, _ := newClient(t, cfg, wechatpay.StoreOptions{})

	failing := &closeCheckingBase{err: errors.New("connection refused")}
	cfgFail := srv.Config()
	cfgFail.Base = failing
	failClient, _ := newClient(t, cfgFail, wechatpay.StoreOptions{})

	noSigner := &http.Client{Transport: &wechatpay.Transport{}}

	// The Transport is called directly: http.Client closes bodies too.
	tests := []struct {
		name   string
		client *http.Client
		method string
		path   string
		size   int
		want   error
	}{
		{"success", good, "POST", "/v3/echo/ok", 10, nil},
		{"request too large", good, "POST", "/v3/echo/big", 2 << 10, wechatpay.ErrBodyTooLarge},
		{"response too large", good, "POST", "/v3/big", 10, wechatpay.ErrBodyTooLarge},
		{"transport error", failClient, "POST", "/v3/echo/x", 10, failing.err},
		{"not configured", noSigner, "POST", "/v3/echo/x", 10, wechatpay.ErrNotConfigured},
		{"verification failure", good, "POST", "/v3/echo/probe", 10, wechatpay.ErrSignatureProbe},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == wechatpay.ErrSignatureProbe {
				srv.SetFault(wechatpaytest.FaultProbe)
				defer srv.SetFault(wechatpaytest.FaultNone)
			}
			body := &countingBody{Reader: strings.NewReader(`"` + strings.Repeat("a", tc.size-2) + `"`)}
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, body)
			resp, err := tc.client.Transport.RoundTrip(req)
			if resp != nil {
				resp.Body.Close()
			}
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error = %v; want %v", err, tc.want)
			}
			if tc.want != nil && resp != nil {
				t.Error("a response came with the error")
			}
			if n := body.closes.Load(); n != 1 {
				t.Errorf("request body closed %d times; want 1", n)
			}
		})
	}
}

func TestConcurrentUnknownSerialOneDownload(t *testing.T) {
	// The download is held open until the first request, cancelled, has
	// given up, so that the others join it or, arriving later, find its
	// result: exactly one download, however slowly the machine runs.
	// Nothing here depends on timing; FetchTimeout is out of reach.
	srv := newSandbox(t)
	gate := newCertGate(t, srv)
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	gate.hold = func() {
		once.Do(func() { close(started) })
		<-release
	}
	cfg := gate.config(srv, srv.Merchant().ID, false)
	client, _ := newClient(t, cfg, wechatpay.StoreOptions{FetchTimeout: time.Hour})
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	cctx, cancel := context.WithCancel(context.Background())
	first := make(chan struct{})
	for i := range n {
		ctx := context.Background()
		if i == 0 {
			ctx = cctx
		}
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/v3/echo/%d", cfg.BaseURL, i), nil)
			resp, err := client.Do(req)
			if i == 0 {
				if !errors.Is(err, context.Canceled) {
					errs <- fmt.Errorf("cancelled request: %v; want context.Canceled", err)
				}
				if resp != nil {
					resp.Body.Close()
				}
				close(first)
				return
			}
			if err != nil {
				errs <- err
				return
			}
			if resp.StatusCode != 200 {
				errs <- fmt.Errorf("status %d", resp.StatusCode)
			}
			resp.Body.Close()
		})
	}
	<-started // the download is open
	cancel()
	<-first // the cancelled caller gave up; the download goes on
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := gate.downloads.Load(); got != 1 {
		t.Errorf("certificate downloads = %d; want 1", got)
	}
}

func TestRotationMidRun(t *testing.T) {
	srv := newSandbox(t)
	id := srv.Merchant().ID
	client, _ := newClient(t, srv.Config(), wechatpay.StoreOptions{MinRefreshInterval: 50 * time.Millisecond})
	var failed, done atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(srv.URL + "/v3/echo/r")
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
					t.Log(err)
				} else {
					resp.Body.Close()
				}
				done.Add(1)
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	next := srv.AddCertificate(id) // listed ahead of use
	time.Sleep(100 * time.Millisecond)
	srv.UseCertificate(id, next)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if f := failed.Load(); f != 0 {
		t.Errorf("%d of %d requests failed during rotation", f, done.Load())
	}
	if got := srv.CertificateDownloads(); got != 2 {
		t.Errorf("certificate downloads = %d; want 2 (one extra for the rotation)", got)
	}
	if srv.SigningSerial(id) != next {
		t.Fatal("sandbox did not switch certificates")
	}
}

func TestRefreshAheadServesCachedKey(t *testing.T) {
	srv := newSandbox(t)
	client, store := newClient(t, srv.Config(), wechatpay.StoreOptions{RefreshInterval: 200 * time.Millisecond, MinRefreshInterval: time.Millisecond})
	get := func() {
		t.Helper()
		resp, err := client.Get(srv.URL + "/v3/echo/r")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get()
	time.Sleep(250 * time.Millisecond)
	const delay = time.Minute // no load makes ten requests take this long
	srv.SetCertDelay(delay)
	start := time.Now()
	for range 10 {
		get()
	}
	if d := time.Since(start); d >= delay {
		t.Errorf("stale-set requests took %s: they waited for the refresh", d)
	}
	srv.SetCertDelay(0)
	store.Close() // waits for the background refresh
	if got := srv.CertificateDownloads(); got != 2 {
		t.Errorf("certificate downloads = %d; want 2 (one refresh ahead)", got)
	}
}

func TestCertificateEndpointFailures(t *testing.T) {
	tests := []struct {
		name  string
		setup func(srv *wechatpaytest.Server, next string)
		want  string
	}{
		{"500", func(s *wechatpaytest.Server, _ string) { s.SetCertFault(wechatpaytest.CertStatus500) }, "HTTP 500"},
		{"hang", func(s *wechatpaytest.Server, _ string) { s.SetCertFault(wechatpaytest.CertHang) }, "deadline exceeded"},
		{"garbage", func(s *wechatpaytest.Server, _ string) { s.SetCertFault(wechatpaytest.CertGarbage) }, "not the certificate JSON"},
		{"wrong APIv3 key", func(s *wechatpaytest.Server, _ string) { s.SetCertFault(wechatpaytest.CertWrongAPIv3Key) }, "APIv3 key is wrong"},
		{"serial mismatch", func(s *wechatpaytest.Server, _ string) { s.SetCertFault(wechatpaytest.CertSerialMismatch) }, "has serial"},
		{"bad signature", func(s *wechatpaytest.Server, _ string) { s.SetCertFault(wechatpaytest.CertBadSignature) }, "signature does not match"},
		{"unsigned", func(s *wechatpaytest.Server, _ string) { s.SetCertFault(wechatpaytest.CertUnsigned) }, "missing or malformed signature"},
		{"expired", func(s *wechatpaytest.Server, next string) { s.ExpireCertificate(s.Merchant().ID, next) }, "no key for serial"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSandbox(t)
			id := srv.Merchant().ID
			client, _ := newClient(t, srv.Config(), wechatpay.StoreOptions{MinRefreshInterval: time.Millisecond, FetchTimeout: 300 * time.Millisecond})
			first := srv.SigningSerial(id)
			resp, err := client.Get(srv.URL + "/v3/echo/warm")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()

			next := srv.AddCertificate(id)
			srv.UseCertificate(id, next)
			tc.setup(srv, next)
			time.Sleep(2 * time.Millisecond)
			resp, err = client.Get(srv.URL + "/v3/echo/x")
			if err == nil {
				resp.Body.Close()
				t.Fatal("request verified although the certificate download failed")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v; want it to say %q", err, tc.want)
			}
			// The certificate cached before keeps working.
			srv.UseCertificate(id, first)
			resp, err = client.Get(srv.URL + "/v3/echo/y")
			if err != nil {
				t.Fatalf("cached certificate after a failed download: %v", err)
			}
			resp.Body.Close()
		})
	}
}

func TestPublicKeyMode(t *testing.T) {
	t.Run("public key only", func(t *testing.T) {
		srv := newSandbox(t, wechatpaytest.PublicKeyOnly())
		cfg := srv.Config()
		client, store := newClient(t, cfg, wechatpay.StoreOptions{})
		resp, err := client.Get(srv.URL + "/v3/echo/pk")
		if err != nil {
			t.Fatal(err)
		}
		if e := decodeEcho(t, resp); e.Serial != cfg.PublicKeyID {
			t.Errorf("request Wechatpay-Serial = %q; want %q", e.Serial, cfg.PublicKeyID)
		}
		if got := srv.CertificateDownloads(); got != 0 {
			t.Errorf("certificate downloads = %d; want 0 in public-key mode", got)
		}
		// An unknown public key ID fails at once, without a download.
		_, err = store.PublicKey(context.Background(), cfg.MerchantID, "PUB_KEY_ID_0000000000000000000000000000000099")
		if !errors.Is(err, wechatpay.ErrUnknownSerial) {
			t.Errorf("unknown PUB_KEY_ID: %v; want ErrUnknownSerial", err)
		}
		// The endpoint says RESOURCE_NOT_EXISTS, and the store remembers.
		if err := store.Refresh(context.Background(), cfg.MerchantID); !errors.Is(err, wechatpay.ErrNoPlatformCertificates) {
			t.Errorf("Refresh = %v; want ErrNoPlatformCertificates", err)
		}
		_, err = store.PublicKey(context.Background(), cfg.MerchantID, "5157F09EFDC096DE15EBE81A47057A7232F1B8E1")
		if !errors.Is(err, wechatpay.ErrUnknownSerial) || !errors.Is(err, wechatpay.ErrNoPlatformCertificates) {
			t.Errorf("certificate serial for a public-key merchant: %v", err)
		}
		if got := srv.CertificateDownloads(); got != 1 {
			t.Errorf("certificate downloads = %d; want 1 (remembered)", got)
		}
	})
	t.Run("migration", func(t *testing.T) {
		srv := newSandbox(t, wechatpaytest.WithPublicKey())
		m := srv.Merchant()
		cfg := srv.Config()
		cfg.PublicKeyID, cfg.PublicKey = m.PublicKeyID, m.PublicKey
		client, _ := newClient(t, cfg, wechatpay.StoreOptions{})
		// Default: the public key is asked for and signs the response.
		resp, err := client.Get(srv.URL + "/v3/echo/a")
		if err != nil {
			t.Fatal(err)
		}
		if e := decodeEcho(t, resp); e.Serial != m.PublicKeyID || resp.Header.Get("Wechatpay-Serial") != m.PublicKeyID {
			t.Errorf("signed by %q after asking %q; want the public key", resp.Header.Get("Wechatpay-Serial"), e.Serial)
		}
		// A request naming the platform certificate is answered with it.
		cert := srv.SigningSerial(m.ID)
		req, _ := http.NewRequestWithContext(wechatpay.WithSerial(context.Background(), cert), "GET", srv.URL+"/v3/echo/b", nil)
		resp, err = client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Wechatpay-Serial"); got != cert {
			t.Errorf("signed by %q; want the certificate %s", got, cert)
		}
		if got := srv.CertificateDownloads(); got != 1 {
			t.Errorf("certificate downloads = %d; want 1", got)
		}
	})
}

func TestManyMerchantsShareOneStore(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 300
	}
	srv := newSandbox(t)
	// Size counts merchants; an evicted merchant is downloaded again
	// once MinRefreshInterval has passed since its last download.
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{Size: 256, MinRefreshInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ids := make([]string, n)
	clients := make([]*http.Client, n)
	for i := range n {
		m := srv.AddMerchant()
		ids[i] = m.ID
		cfg := srv.MerchantConfig(m.ID)
		cfg.Store = store
		clients[i], _ = newClient(t, cfg, wechatpay.StoreOptions{})
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	var failures atomic.Int32
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			resp, err := clients[i].Get(srv.URL + "/v3/echo/m")
			if err != nil {
				failures.Add(1)
				t.Errorf("merchant %s: %v", ids[i], err)
				return
			}
			resp.Body.Close()
			if got := resp.Header.Get("Wechatpay-Serial"); got != srv.SigningSerial(ids[i]) {
				t.Errorf("merchant %s verified with %s; want its own %s", ids[i], got, srv.SigningSerial(ids[i]))
			}
		})
	}
	wg.Wait()
	if got := store.Len(); got > 256 {
		t.Errorf("store holds %d certificates; want at most 256", got)
	}
	// A response for merchant A never verifies with merchant B's certificate.
	other := srv.SigningSerial(ids[n-1])
	if _, err := store.PublicKey(context.Background(), ids[n-2], other); !errors.Is(err, wechatpay.ErrUnknownSerial) {
		t.Errorf("merchant %s's serial looked up for %s: %v; want ErrUnknownSerial", ids[n-1], ids[n-2], err)
	}
	// The first merchants were evicted; they are fetched again on demand.
	before := srv.MerchantCertificateDownloads(ids[0])
	resp, err := clients[0].Get(srv.URL + "/v3/echo/again")
	if err != nil {
		t.Fatalf("evicted merchant: %v", err)
	}
	resp.Body.Close()
	if got := srv.MerchantCertificateDownloads(ids[0]); got != before+1 {
		t.Errorf("downloads for evicted merchant = %d; want %d", got, before+1)
	}
}

func TestAPIError(t *testing.T) {
	srv := newSandbox(t)
	srv.Handle("POST /v3/pay/transactions/native", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		w.Write([]byte(`{"code":"PARAM_ERROR","message":"参数错误","detail":{"field":"/amount/currency","value":"XYZ","issue":"Currency code is invalid","location":"body"}}`))
	}))
	client, _ := newClient(t, srv.Config(), wechatpay.StoreOptions{})
	resp, err := client.Post(srv.URL+"/v3/pay/transactions/native", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	err = wechatpay.CheckResponse(resp)
	var apiErr *wechatpay.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("CheckResponse = %v; want *APIError", err)
	}
	if apiErr.StatusCode != 400 || apiErr.Code != "PARAM_ERROR" || apiErr.RequestID == "" || !apiErr.Verified || !strings.Contains(string(apiErr.Detail), "/amount/currency") {
		t.Errorf("APIError = %+v", apiErr)
	}
	if b, _ := io.ReadAll(resp.Body); !bytes.Contains(b, []byte("PARAM_ERROR")) {
		t.Error("body not readable after CheckResponse")
	}

	// A wrong merchant key. With nothing cached, the certificate download
	// is refused first, and its SIGN_ERROR comes out of the error.
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cfg := srv.Config()
	cfg.PrivateKey = other
	bad, _ := newClient(t, cfg, wechatpay.StoreOptions{})
	_, err = bad.Get(srv.URL + "/v3/echo/x")
	if !errors.As(err, &apiErr) || apiErr.Code != "SIGN_ERROR" || !strings.Contains(string(apiErr.Detail), "truncated_sign_message") {
		t.Errorf("wrong key, empty store: %v; want SIGN_ERROR with truncated_sign_message", err)
	}
	// With the platform certificate cached, the signed 401 is returned.
	good, store := newClient(t, srv.Config(), wechatpay.StoreOptions{})
	resp, err = good.Get(srv.URL + "/v3/echo/warm")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cfg.Store = store
	bad, _ = newClient(t, cfg, wechatpay.StoreOptions{})
	resp, err = bad.Get(srv.URL + "/v3/echo/x")
	if err != nil {
		t.Fatal(err)
	}
	err = wechatpay.CheckResponse(resp)
	if !errors.As(err, &apiErr) || apiErr.Code != "SIGN_ERROR" || !apiErr.Verified || !strings.Contains(string(apiErr.Detail), "truncated_sign_message") {
		t.Errorf("CheckResponse = %v; want a verified SIGN_ERROR with truncated_sign_message", err)
	}
}

func TestStoreRootsPinning(t *testing.T) {
	srv := newSandbox(t)
	client, _ := newClient(t, srv.Config(), wechatpay.StoreOptions{Roots: srv.Roots()})
	resp, err := client.Get(srv.URL + "/v3/echo/pinned")
	if err != nil {
		t.Fatalf("certificates chaining to the configured roots: %v", err)
	}
	resp.Body.Close()

	other := wechatpaytest.NewServer()
	defer other.Close()
	client, _ = newClient(t, srv.Config(), wechatpay.StoreOptions{Roots: other.Roots()})
	_, err = client.Get(srv.URL + "/v3/echo/pinned")
	if !errors.Is(err, wechatpay.ErrCertificateDownload) || !strings.Contains(err.Error(), "does not chain") {
		t.Errorf("certificates from a foreign root: %v; want a chain error", err)
	}
}

// TestSignedHeaderIsACopy: the request the Transport sends has a header
// of its own, whose values share no array with the caller's, even where
// the caller's slices have room to grow; a Base that writes to it (and to
// its values) leaves the caller's request as it was. The caller's own
// headers go out with it, and the signature headers replace the caller's.
func TestSignedHeaderIsACopy(t *testing.T) {
	srv := newSandbox(t)
	cfg := srv.Config()
	var sent http.Header
	cfg.Base = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path != "/v3/echo/h" { // the certificate download
			return srv.Config().Base.RoundTrip(r)
		}
		sent = r.Header.Clone()
		for k, vv := range r.Header {
			for i := range vv {
				vv[i] = "overwritten by Base"
			}
			r.Header[k] = append(vv, "appended by Base")
		}
		r.Header.Set("X-Base", "1")
		return srv.Config().Base.RoundTrip(sentCopy(r, sent))
	})
	client, _ := newClient(t, cfg, wechatpay.StoreOptions{})
	req, _ := http.NewRequest("POST", srv.URL+"/v3/echo/h", strings.NewReader(`{}`))
	roomy := make([]string, 1, 8)
	roomy[0] = "trace-1"
	req.Header["X-Trace"] = roomy
	req.Header["Multi"] = []string{"a", "b"}
	req.Header["Authorization"] = []string{"caller's own"}
	req.Header["Accept"] = []string{"application/json; charset=utf-8"}
	before := req.Header.Clone()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if fmt.Sprint(req.Header) != fmt.Sprint(before) || roomy[:2][1] != "" {
		t.Errorf("caller's header changed to %v; was %v", req.Header, before)
	}
	if sent.Get("X-Trace") != "trace-1" || fmt.Sprint(sent["Multi"]) != "[a b]" || sent.Get("Accept") != "application/json; charset=utf-8" {
		t.Errorf("sent header %v lacks the caller's headers", sent)
	}
	if a := sent.Get("Authorization"); !strings.HasPrefix(a, "WECHATPAY2-SHA256-RSA2048 ") || len(sent["Authorization"]) != 1 {
		t.Errorf("sent Authorization = %q; want the signature alone", sent["Authorization"])
	}
	if sent.Get("Content-Type") != "application/json" || sent.Get("User-Agent") == "" {
		t.Errorf("sent header %v lacks Content-Type or User-Agent", sent)
	}
}

// sentCopy is r with the header it had before a test's Base wrote to it.
func sentCopy(r *http.Request, h http.Header) *http.Request {
	r2 := r.Clone(r.Context())
	r2.Header = h.Clone()
	return r2
}

// TestStoreVerifyHook: a Store's VerifyPKCS1v15 checks every response
// verified with its keys, given the Store's own key and the SHA-256
// digest; what it refuses is a *VerifyError with ErrBadSignature.
func TestStoreVerifyHook(t *testing.T) {
	srv := newSandbox(t)
	var calls atomic.Int32
	refuse := atomic.Bool{}
	client, _ := newClient(t, srv.Config(), wechatpay.StoreOptions{
		VerifyPKCS1v15: func(pub *rsa.PublicKey, h crypto.Hash, hashed, sig []byte) error {
			calls.Add(1)
			if refuse.Load() {
				return errors.New("refused by the hook")
			}
			return rsa.VerifyPKCS1v15(pub, h, hashed, sig)
		},
	})
	resp, err := client.Get(srv.URL + "/v3/echo/hook")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if calls.Load() != 1 || !wechatpay.IsVerified(resp) {
		t.Errorf("hook calls = %d, verified %v; want 1, true", calls.Load(), wechatpay.IsVerified(resp))
	}
	refuse.Store(true)
	_, err = client.Get(srv.URL + "/v3/echo/hook")
	var ve *wechatpay.VerifyError
	if !errors.As(err, &ve) || !errors.Is(err, wechatpay.ErrBadSignature) || calls.Load() != 2 {
		t.Errorf("with the hook refusing: %v after %d calls; want a *VerifyError with ErrBadSignature after 2", err, calls.Load())
	}
}
