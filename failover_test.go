package wechatpay_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

const (
	mainHost   = "api.mch.weixin.qq.com"
	backupHost = "api2.mch.weixin.qq.com"
	hkHost     = "apihk.mch.weixin.qq.com"
)

// Modes of a fakeHost.
const (
	hostUp     = iota // passes requests to the sandbox
	hostDown          // refuses connections
	host503           // answers 503 without reading the request
	hostHangs         // reads the request body, then never answers
	hostForges        // answers 200 with a signature that does not verify
)

// fakeHost stands in for one WeChat Pay host name: a TLS server on
// loopback in front of the shared sandbox.
type fakeHost struct {
	ts       *httptest.Server
	mode     atomic.Int32
	requests atomic.Int32 // requests that reached it (any mode but down)
}

// failoverRig is two WeChat Pay hosts on loopback, reached by their real
// names through a dialer that refuses (and records) any other address.
type failoverRig struct {
	srv          *wechatpaytest.Server
	main, backup *fakeHost
	hk           *fakeHost // apihk.mch.weixin.qq.com
	failover     *wechatpay.Failover
	client       *http.Client

	mu      sync.Mutex
	dialed  []string
	outside []string
	events  []wechatpay.Event
	now     time.Time
}

// newFailoverRig returns the hosts and a client using f with a Transport
// for baseURL ("" means the main host).
func newFailoverRig(t *testing.T, f *wechatpay.Failover, baseURL ...string) *failoverRig {
	t.Helper()
	r := &failoverRig{now: time.Unix(1_800_000_000, 0)}
	r.srv = newSandbox(t, wechatpaytest.WithPublicKey())
	target, _ := url.Parse(r.srv.URL)
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
	cert, pool := hostCertificate(t, mainHost, backupHost, hkHost)
	stop := make(chan struct{})
	newHost := func() *fakeHost {
		h := &fakeHost{}
		h.ts = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			h.requests.Add(1)
			switch h.mode.Load() {
			case host503:
				http.Error(w, `{"code":"SYSTEM_ERROR","message":"busy"}`, http.StatusServiceUnavailable)
			case hostHangs:
				io.Copy(io.Discard, req.Body)
				select {
				case <-req.Context().Done():
				case <-stop:
				}
				panic(http.ErrAbortHandler) // never answer, not even late
			case hostForges:
				h := w.Header()
				h.Set(wire.HeaderTimestamp, strconv.FormatInt(time.Now().Unix(), 10))
				h.Set(wire.HeaderNonce, "N")
				h.Set(wire.HeaderSerial, "PUB_KEY_ID_0114567890123456789012345678901234") // never downloaded
				h.Set(wire.HeaderSignature, "AAAA")
				w.Write([]byte(`{}`))
			default:
				proxy.ServeHTTP(w, req)
			}
		}))
		h.ts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		h.ts.StartTLS()
		t.Cleanup(h.ts.Close)
		return h
	}
	r.main, r.backup, r.hk = newHost(), newHost(), newHost()
	t.Cleanup(func() { close(stop) }) // runs before the servers close
	refused := closedAddr(t)

	base := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			r.mu.Lock()
			r.dialed = append(r.dialed, addr)
			var h *fakeHost
			switch addr {
			case mainHost + ":443":
				h = r.main
			case backupHost + ":443":
				h = r.backup
			case hkHost + ":443":
				h = r.hk
			default:
				r.outside = append(r.outside, addr)
			}
			r.mu.Unlock()
			if h == nil {
				return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("test dialer: host outside the allowed list")}
			}
			to := h.ts.Listener.Addr().String()
			if h.mode.Load() == hostDown {
				to = refused
			}
			return (&net.Dialer{}).DialContext(ctx, network, to)
		},
	}
	t.Cleanup(base.CloseIdleConnections)

	m := r.srv.Merchant()
	cfg := r.srv.Config()
	cfg.BaseURL = "https://" + mainHost
	if len(baseURL) > 0 {
		cfg.BaseURL = baseURL[0]
	}
	cfg.PublicKeyID, cfg.PublicKey = m.PublicKeyID, m.PublicKey // no certificate download needed
	cfg.Base = base
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg.Store = store
	tr, err := wechatpay.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.Transport = tr
	f.Events = func(_ context.Context, ev wechatpay.Event) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.events = append(r.events, ev)
	}
	r.failover = f
	wechatpay.SetFailoverClock(r.failover, func() time.Time {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.now
	})
	r.client = &http.Client{Transport: r.failover}
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.outside) > 0 {
			t.Errorf("dialed hosts outside the allowed list: %v", r.outside)
		}
	})
	return r
}

func (r *failoverRig) advance(d time.Duration) {
	r.mu.Lock()
	r.now = r.now.Add(d)
	r.mu.Unlock()
}

// takeEvents returns the events so far and forgets them.
func (r *failoverRig) takeEvents() []wechatpay.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	evs := r.events
	r.events = nil
	return evs
}

// counts returns the requests the main and backup hosts received.
func (r *failoverRig) counts() (int, int) {
	return int(r.main.requests.Load()), int(r.backup.requests.Load())
}

// do sends a request to the main host and returns the answer's status
// and the echoed body, or the error.
func (r *failoverRig) do(ctx context.Context, method, path, body string) (int, string, error) {
	return r.doURL(ctx, method, "https://"+mainHost+path, body)
}

func (r *failoverRig) doURL(ctx context.Context, method, url, body string) (int, string, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, "", err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode == 200 && !wechatpay.IsVerified(resp) {
		return 0, "", errors.New("a 200 through Failover is not marked verified")
	}
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Body string `json:"body"`
	}
	json.Unmarshal(b, &e)
	return resp.StatusCode, e.Body, nil
}

// wantEvents checks that exactly the given kinds were emitted, each to
// the given host.
func wantEvents(t *testing.T, got []wechatpay.Event, want ...string) {
	t.Helper()
	var s []string
	for _, ev := range got {
		s = append(s, ev.Kind+"→"+ev.Host)
		if ev.Time.IsZero() {
			t.Errorf("event %s has no time", ev.Kind)
		}
	}
	if !slices.Equal(s, want) {
		t.Errorf("events = %v; want %v", s, want)
	}
}

func TestFailoverConnectionRefused(t *testing.T) {
	r := newFailoverRig(t, &wechatpay.Failover{FailAfter: 2})
	r.main.mode.Store(hostDown)
	// A POST that certainly was not sent goes to the backup.
	status, body, err := r.do(context.Background(), "POST", "/v3/echo/pay", `{"out_trade_no":"T1"}`)
	if err != nil || status != 200 || body != `{"out_trade_no":"T1"}` {
		t.Fatalf("POST = %d %q, %v; want 200 from the backup with the body", status, body, err)
	}
	if m, b := r.counts(); m != 0 || b != 1 {
		t.Errorf("main, backup got %d, %d requests; want 0, 1", m, b)
	}
	evs := r.takeEvents()
	wantEvents(t, evs, "failover→"+backupHost)
	if len(evs) == 1 && (evs[0].MerchantID != r.srv.Merchant().ID || !strings.Contains(evs[0].Err.Error(), "dial")) {
		t.Errorf("failover event = %+v; want the merchant and the dial error", evs[0])
	}
	// The second failure makes it stay on the backup: the third request
	// does not try the main host at all.
	r.do(context.Background(), "GET", "/v3/echo/q", "")
	r.takeEvents()
	r.mu.Lock()
	dialsBefore := len(r.dialed)
	r.mu.Unlock()
	r.backup.ts.CloseClientConnections() // so that a dial shows which host is used
	status, _, err = r.do(context.Background(), "GET", "/v3/echo/q", "")
	if err != nil || status != 200 {
		t.Fatalf("GET on the backup = %d, %v", status, err)
	}
	r.mu.Lock()
	newDials := slices.Clone(r.dialed[dialsBefore:])
	r.mu.Unlock()
	if slices.Contains(newDials, mainHost+":443") {
		t.Errorf("after 2 failures the main host was still tried: dialed %v", newDials)
	}
	wantEvents(t, r.takeEvents())
}

func TestFailover503(t *testing.T) {
	r := newFailoverRig(t, &wechatpay.Failover{FailAfter: 10})
	r.main.mode.Store(host503)

	// A GET is safe to repeat: the backup answers it.
	status, _, err := r.do(context.Background(), "GET", "/v3/echo/q", "")
	if err != nil || status != 200 {
		t.Fatalf("GET = %d, %v; want 200 from the backup", status, err)
	}
	wantEvents(t, r.takeEvents(), "failover→"+backupHost)

	// A POST that reached the main host is not repeated: the caller gets
	// the 503.
	status, _, err = r.do(context.Background(), "POST", "/v3/echo/pay", `{"out_trade_no":"T2"}`)
	if err != nil || status != 503 {
		t.Fatalf("POST = %d, %v; want the main host's 503", status, err)
	}
	if m, b := r.counts(); m != 2 || b != 1 {
		t.Errorf("main, backup got %d, %d requests; want 2, 1 (the POST not re-sent)", m, b)
	}
	wantEvents(t, r.takeEvents())

	// Marked repeatable, it is.
	status, body, err := r.do(wechatpay.WithRepeatable(context.Background()), "POST", "/v3/echo/pay", `{"out_trade_no":"T2"}`)
	if err != nil || status != 200 || body != `{"out_trade_no":"T2"}` {
		t.Fatalf("repeatable POST = %d %q, %v; want 200 from the backup", status, body, err)
	}
	if m, b := r.counts(); m != 3 || b != 2 {
		t.Errorf("main, backup got %d, %d requests; want 3, 2", m, b)
	}
	wantEvents(t, r.takeEvents(), "failover→"+backupHost)
}

func TestFailoverHangAfterBody(t *testing.T) {
	r := newFailoverRig(t, &wechatpay.Failover{AttemptTimeout: time.Second})
	r.main.mode.Store(hostHangs)
	_, _, err := r.do(context.Background(), "POST", "/v3/echo/pay", `{"out_trade_no":"T3"}`)
	var unknown *wechatpay.OutcomeUnknownError
	if !errors.As(err, &unknown) || unknown.Method != "POST" || unknown.Path != "/v3/echo/pay" || !strings.Contains(err.Error(), "WithRepeatable") {
		t.Fatalf("POST to a hanging host: err = %v; want an *OutcomeUnknownError naming WithRepeatable", err)
	}
	if m, b := r.counts(); m != 1 || b != 0 {
		t.Errorf("main, backup got %d, %d requests; want 1, 0 (no re-send)", m, b)
	}
	wantEvents(t, r.takeEvents())

	status, body, err := r.do(wechatpay.WithRepeatable(context.Background()), "POST", "/v3/echo/pay", `{"out_trade_no":"T3"}`)
	if err != nil || status != 200 || body != `{"out_trade_no":"T3"}` {
		t.Fatalf("repeatable POST = %d %q, %v; want 200 from the backup", status, body, err)
	}
	if m, b := r.counts(); m != 2 || b != 1 {
		t.Errorf("main, backup got %d, %d requests; want 2, 1", m, b)
	}
	wantEvents(t, r.takeEvents(), "failover→"+backupHost)

	// The caller's own deadline is not a host failure: nothing is re-sent.
	ctx, cancel := context.WithTimeout(wechatpay.WithRepeatable(context.Background()), 300*time.Millisecond)
	defer cancel()
	if _, _, err := r.do(ctx, "POST", "/v3/echo/pay", `{}`); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v; want the caller's deadline", err)
	}
	if m, b := r.counts(); m != 3 || b != 1 {
		t.Errorf("main, backup got %d, %d requests; want 3, 1", m, b)
	}
	wantEvents(t, r.takeEvents())
}

func TestFailoverSwitchBack(t *testing.T) {
	r := newFailoverRig(t, &wechatpay.Failover{FailAfter: 2, RecheckEvery: time.Minute})
	get := func() {
		t.Helper()
		if status, _, err := r.do(context.Background(), "GET", "/v3/echo/q", ""); err != nil || status != 200 {
			t.Fatalf("GET = %d, %v", status, err)
		}
	}
	post := func() {
		t.Helper()
		if status, _, err := r.do(context.Background(), "POST", "/v3/echo/pay", `{"n":1}`); err != nil || status != 200 {
			t.Fatalf("POST = %d, %v", status, err)
		}
	}
	r.main.mode.Store(host503)
	get()
	get() // two failures: now on the backup
	wantEvents(t, r.takeEvents(), "failover→"+backupHost, "failover→"+backupHost)
	get()
	post() // goes to the backup without touching the main host
	if m, b := r.counts(); m != 2 || b != 4 {
		t.Errorf("main, backup got %d, %d; want 2, 4", m, b)
	}
	wantEvents(t, r.takeEvents())

	// A minute later a GET tries the main host, still failing; back to
	// the backup for the next minute.
	r.advance(time.Minute)
	get()
	get()
	if m, b := r.counts(); m != 3 || b != 6 {
		t.Errorf("main, backup got %d, %d; want 3, 6", m, b)
	}
	wantEvents(t, r.takeEvents(), "failover→"+backupHost)

	// The main host recovers; a POST never tests it, the next GET after
	// the interval does, and switches back.
	r.main.mode.Store(hostUp)
	r.advance(time.Minute)
	post()
	if m, b := r.counts(); m != 3 || b != 7 {
		t.Errorf("main, backup got %d, %d; want 3, 7 (a POST does not test the main host)", m, b)
	}
	get()
	wantEvents(t, r.takeEvents(), "failback→"+mainHost)
	post()
	if m, b := r.counts(); m != 5 || b != 7 {
		t.Errorf("main, backup got %d, %d; want 5, 7 (back on the main host)", m, b)
	}
	wantEvents(t, r.takeEvents())
}

// TestFailoverOnlyAllowedHosts checks that Failover uses only the hosts
// the Transport signs for: the global host fails over to the mainland
// one; a custom BaseURL (a sandbox, a proxy) has no other host, so its
// requests are never sent elsewhere, and WeChat Pay's hosts are refused
// for it before anything is dialed. It also checks that a verification
// failure is not taken for a host failure.
func TestFailoverOnlyAllowedHosts(t *testing.T) {
	// Global: apihk fails over to api.mch.
	g := newFailoverRig(t, &wechatpay.Failover{}, "https://"+hkHost)
	g.hk.mode.Store(hostDown)
	status, _, err := g.doURL(context.Background(), "GET", "https://"+hkHost+"/v3/echo/q", "")
	if err != nil || status != 200 {
		t.Fatalf("global GET = %d, %v; want 200 from %s", status, err, mainHost)
	}
	if m, b := g.counts(); m != 1 || b != 0 {
		t.Errorf("global: main, backup got %d, %d; want 1, 0 (api2 is not a global host)", m, b)
	}
	wantEvents(t, g.takeEvents(), "failover→"+mainHost)

	// A custom BaseURL: no failover, and WeChat Pay's hosts are refused.
	c := newFailoverRig(t, &wechatpay.Failover{FailAfter: 1}, "https://pay.example.com")
	if _, _, err := c.doURL(context.Background(), "GET", "https://pay.example.com/v3/echo/q", ""); err == nil {
		t.Fatal("a request to the undialable custom host succeeded")
	}
	for _, u := range []string{"https://" + mainHost + "/v3/echo/q", "https://" + backupHost + "/v3/echo/q"} {
		if _, _, err := c.doURL(context.Background(), "GET", u, ""); !errors.Is(err, wechatpay.ErrHostNotAllowed) {
			t.Errorf("custom BaseURL, GET %s: err = %v; want ErrHostNotAllowed", u, err)
		}
	}
	if m, b := c.counts(); m != 0 || b != 0 || c.hk.requests.Load() != 0 {
		t.Errorf("custom BaseURL: WeChat Pay's hosts got %d, %d, %d requests; want none", m, b, c.hk.requests.Load())
	}
	c.mu.Lock()
	if !slices.Equal(c.dialed, []string{"pay.example.com:443"}) {
		t.Errorf("custom BaseURL dialed %v; want only pay.example.com:443", c.dialed)
	}
	c.outside = nil // expected: the test dialer refused it
	c.mu.Unlock()
	wantEvents(t, c.takeEvents())

	r := newFailoverRig(t, &wechatpay.Failover{FailAfter: 1})
	// A forged answer from the main host fails verification: returned,
	// not re-sent, and not counted against the host.
	r.main.mode.Store(hostForges)
	req, _ := http.NewRequest("GET", "https://"+mainHost+"/v3/echo/q", nil)
	_, err = r.client.Do(req)
	var ve *wechatpay.VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v; want a *VerifyError", err)
	}
	if m, b := r.counts(); m != 1 || b != 0 {
		t.Errorf("main, backup got %d, %d; want 1, 0", m, b)
	}
	wantEvents(t, r.takeEvents())
}

// hostCertificate returns a self-signed certificate for names and a pool
// that trusts it.
func hostCertificate(t *testing.T, names ...string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: names[0]},
		DNSNames:              names,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}
