package middleware_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// benchSetup returns a sandbox, a warm Store for its merchant and one
// signed payment notification (headers and body) built by the sandbox.
func benchSetup(b *testing.B) (*wechatpaytest.Server, *wechatpay.Store, http.Header, []byte) {
	b.Helper()
	srv := wechatpaytest.NewServer()
	b.Cleanup(srv.Close)
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	if err := store.Register(srv.Config()); err != nil {
		b.Fatal(err)
	}
	if err := store.Refresh(context.Background(), srv.Merchant().ID); err != nil {
		b.Fatal(err)
	}
	req, err := srv.NotificationRequest(context.Background(), "http://merchant.test/notify", "TRANSACTION.SUCCESS", nil)
	if err != nil {
		b.Fatal(err)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		b.Fatal(err)
	}
	return srv, store, req.Header, body
}

// notificationCall returns one run of the whole middleware, from the
// request to the handler's 204, on a ResponseRecorder.
func notificationCall(b *testing.B, store *wechatpay.Store, m wechatpaytest.Merchant, header http.Header, body []byte) func() {
	h := middleware.Notifications(middleware.Config{Keys: store, MerchantID: m.ID, APIv3Key: m.APIv3Key})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n, ok := middleware.NotificationFrom(r.Context()); !ok || len(n.Plaintext) == 0 {
				b.Fatal("no notification")
			}
		}))
	u := &url.URL{Path: "/notify"}
	w := &benchWriter{header: http.Header{}}
	return func() {
		req := &http.Request{Method: http.MethodPost, URL: u, Header: header, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}
		clear(w.header)
		w.status = 0
		h.ServeHTTP(w, req)
		if w.status != http.StatusNoContent {
			b.Fatalf("status %d", w.status)
		}
	}
}

// benchWriter is a ResponseWriter reused call after call, as a server
// reuses its buffers, so that the benchmark measures the middleware
// rather than a ResponseRecorder's allocations.
type benchWriter struct {
	header http.Header
	status int
}

func (w *benchWriter) Header() http.Header { return w.header }

func (w *benchWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *benchWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(p), nil
}

// floorCall returns the cryptography of the same notification alone: the
// SHA-256 of the signed message, rsa.VerifyPKCS1v15 and the AES-GCM open
// of the resource, with every input decoded beforehand. The middleware
// cannot be faster than this.
func floorCall(b *testing.B, srv *wechatpaytest.Server, header http.Header, body []byte) func() {
	m := srv.Merchant()
	pub := srv.Certificates(m.ID)[0].PublicKey.(*rsa.PublicKey)
	aead, err := wire.NewAEAD(m.APIv3Key)
	if err != nil {
		b.Fatal(err)
	}
	msg := wire.ResponseMessage(header.Get(wire.HeaderTimestamp), header.Get(wire.HeaderNonce), body)
	sig, err := base64.StdEncoding.DecodeString(header.Get(wire.HeaderSignature))
	if err != nil {
		b.Fatal(err)
	}
	var env struct {
		Resource struct {
			Nonce          string `json:"nonce"`
			AssociatedData string `json:"associated_data"`
			Ciphertext     string `json:"ciphertext"`
		} `json:"resource"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		b.Fatal(err)
	}
	ct, err := base64.StdEncoding.DecodeString(env.Resource.Ciphertext)
	if err != nil {
		b.Fatal(err)
	}
	nonce, ad := []byte(env.Resource.Nonce), []byte(env.Resource.AssociatedData)
	return func() {
		d := sha256.Sum256(msg)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig); err != nil {
			b.Fatal(err)
		}
		if _, err := aead.Open(nil, nonce, ct, ad); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNotification runs the whole middleware, from the request to
// the handler's 204, on a ResponseRecorder.
func BenchmarkNotification(b *testing.B) {
	srv, store, header, body := benchSetup(b)
	call := notificationCall(b, store, srv.Merchant(), header, body)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		call()
	}
}

// BenchmarkNotificationFloor is floorCall alone.
func BenchmarkNotificationFloor(b *testing.B) {
	srv, _, header, body := benchSetup(b)
	floor := floorCall(b, srv, header, body)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		floor()
	}
}

// BenchmarkNotificationVsFloor alternates the whole middleware and its
// floor on one locked OS thread, in batches of pairBatch calls, and times
// each batch by the thread's CPU time (on Linux; wall time elsewhere), so
// that other processes taking the core favour neither side. The cost of
// reading the clock, measured on an empty batch alongside, is taken off
// both. It reports each one's CPU time per call and their ratio
// (middleware/floor), the figure to compare; its ns/op is wall time for
// both. The garbage collector's background work runs on other threads
// and is not counted; allocation assists are, on the side that allocates.
func BenchmarkNotificationVsFloor(b *testing.B) {
	const pairBatch = 8
	srv, store, header, body := benchSetup(b)
	call := notificationCall(b, store, srv.Merchant(), header, body)
	floor := floorCall(b, srv, header, body)
	call() // warm both before timing
	floor()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	batch := func(f func()) time.Duration {
		t0 := threadCPU()
		for range pairBatch {
			f()
		}
		return threadCPU() - t0
	}
	var inMW, inFloor, inClock time.Duration
	n := 0
	for b.Loop() {
		// Alternate which goes first, so neither always runs on a cache
		// the other warmed.
		if n%2 == 0 {
			inMW += batch(call)
			inFloor += batch(floor)
		} else {
			inFloor += batch(floor)
			inMW += batch(call)
		}
		inClock += batch(func() {})
		n++
	}
	calls := float64(n * pairBatch)
	mw, fl := float64(inMW-inClock)/calls, float64(inFloor-inClock)/calls
	b.ReportMetric(mw, "middleware-cpu-ns/call")
	b.ReportMetric(fl, "floor-cpu-ns/call")
	b.ReportMetric(mw/fl, "ratio")
	if n == 1 {
		b.Logf("timed by %s", cpuClock)
	}
}
