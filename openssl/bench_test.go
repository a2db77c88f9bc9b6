package openssl_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"syscall"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/openssl"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// The benchmarks of this file are paired: each iteration runs a batch of
// the crypto/rsa side ("go") and a batch of the OpenSSL side ("ossl"),
// in alternating order, and charges each side the CPU time the process
// used meanwhile (getrusage), not the wall time. Another process taking
// the CPU therefore changes neither figure, and a drift in the machine's
// speed (frequency, caches, neighbours) touches both sides alike. They
// report go-cpu-ns/op, ossl-cpu-ns/op and their ratio ossl/go; ns/op is
// the wall time of one iteration (both batches) and means little.
//
// With GOEXPERIMENT=boringcrypto, the "go" side is BoringCrypto.

// cpuTime is the CPU time (user and system) used by the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// paired runs goSide and osslSide batch times each per iteration and
// reports their CPU time per call.
func paired(b *testing.B, batch int, goSide, osslSide func()) {
	b.Helper()
	goSide() // warm both: key objects, pools
	osslSide()
	var cpuGo, cpuOSSL time.Duration
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		run := func(f func(), sum *time.Duration) {
			t0 := cpuTime()
			for range batch {
				f()
			}
			*sum += cpuTime() - t0
		}
		if n%2 == 0 {
			run(goSide, &cpuGo)
			run(osslSide, &cpuOSSL)
		} else {
			run(osslSide, &cpuOSSL)
			run(goSide, &cpuGo)
		}
		n++
	}
	calls := float64(n * batch)
	b.ReportMetric(float64(cpuGo.Nanoseconds())/calls, "go-cpu-ns/op")
	b.ReportMetric(float64(cpuOSSL.Nanoseconds())/calls, "ossl-cpu-ns/op")
	b.ReportMetric(float64(cpuOSSL)/float64(cpuGo), "ossl/go")
}

func benchKey(b *testing.B) (*rsa.PrivateKey, *openssl.Signer) {
	goKey := officialKey()
	key, err := openssl.NewSigner(goKey)
	if err != nil {
		b.Fatal(err)
	}
	return goKey, key
}

// BenchmarkPairedSign: one RSA-2048 PKCS#1 v1.5 signature with SHA-256,
// crypto/rsa against OpenSSL.
func BenchmarkPairedSign(b *testing.B) {
	goKey, key := benchKey(b)
	d := sha256.Sum256([]byte("POST\n/v3/pay/transactions/jsapi\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{}\n"))
	paired(b, 4, func() {
		if _, err := rsa.SignPKCS1v15(nil, goKey, crypto.SHA256, d[:]); err != nil {
			b.Fatal(err)
		}
	}, func() {
		if _, err := key.Sign(nil, d[:], crypto.SHA256); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkPairedVerify: one RSA-2048 verification, crypto/rsa against
// OpenSSL (its key object made once, as the Store's hook keeps it).
func BenchmarkPairedVerify(b *testing.B) {
	goKey, _ := benchKey(b)
	d := sha256.Sum256([]byte("1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{\"ok\":true}\n"))
	sig, _ := rsa.SignPKCS1v15(nil, goKey, crypto.SHA256, d[:])
	pub := &goKey.PublicKey
	paired(b, 32, func() {
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig); err != nil {
			b.Fatal(err)
		}
	}, func() {
		if err := openssl.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig); err != nil {
			b.Fatal(err)
		}
	})
}

// replayBase answers every request with one response the sandbox signed,
// recorded once: what is measured is the client, not a server.
type replayBase struct {
	header http.Header
	body   []byte
}

func (p *replayBase) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: p.header.Clone(), Body: io.NopCloser(bytes.NewReader(p.body)), ContentLength: int64(len(p.body)), Request: req}, nil
}

// signedGETClients returns two clients for the sandbox's merchant, one on
// crypto/rsa, one on OpenSSL (signing and verifying), each with a Base
// that replays a signed answer of the sandbox, and the URL to GET.
func signedGETClients(b *testing.B) (goClient, osslClient *http.Client, u string) {
	srv := wechatpaytest.NewServer()
	b.Cleanup(srv.Close)
	srv.Handle("GET /v3/pay/transactions/id/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"appid":"wxd678efh567hg6787","mchid":"1900000001","out_trade_no":"1217752501201407033233368018","transaction_id":"4200000001","trade_state":"SUCCESS","amount":{"total":100,"currency":"CNY"}}`))
	}))
	cfg := srv.Config()
	u = cfg.BaseURL + "/v3/pay/transactions/id/4200000001?mchid=" + cfg.MerchantID
	// Record one signed answer through a real Transport.
	var rec replayBase
	recordCfg := cfg
	inner := cfg.Base
	recordCfg.Base = roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := inner.RoundTrip(r)
		if err == nil && r.URL.Path != "/v3/certificates" {
			rec.body, _ = io.ReadAll(resp.Body)
			resp.Body = io.NopCloser(bytes.NewReader(rec.body))
			rec.header = resp.Header.Clone()
		}
		return resp, err
	})
	client := func(c wechatpay.Config, opts wechatpay.StoreOptions) *http.Client {
		store, err := wechatpay.NewStore(opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { store.Close() })
		c.Store = store
		t, err := wechatpay.NewTransport(c)
		if err != nil {
			b.Fatal(err)
		}
		cl := &http.Client{Transport: t}
		getOnce(b, cl, u)
		return cl
	}
	client(recordCfg, wechatpay.StoreOptions{})
	if rec.header == nil {
		b.Fatal("no answer recorded")
	}
	goCfg := cfg
	goClient = client(goCfg, wechatpay.StoreOptions{}) // warms its Store over the sandbox
	goClient.Transport.(*wechatpay.Transport).Base = &rec
	osslCfg := cfg
	key, err := openssl.NewSigner(cfg.PrivateKey.(*rsa.PrivateKey))
	if err != nil {
		b.Fatal(err)
	}
	osslCfg.PrivateKey = key
	osslClient = client(osslCfg, wechatpay.StoreOptions{VerifyPKCS1v15: openssl.VerifyPKCS1v15})
	osslClient.Transport.(*wechatpay.Transport).Base = &rec
	return goClient, osslClient, u
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func getOnce(b *testing.B, c *http.Client, u string) {
	resp, err := c.Get(u)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !wechatpay.IsVerified(resp) {
		b.Fatalf("GET = %d, verified %v", resp.StatusCode, wechatpay.IsVerified(resp))
	}
}

// BenchmarkPairedSignedGET: a whole signed GET through http.Client and
// the Transport (sign, send in memory, read, verify), with the merchant
// key and the Store's verification on crypto/rsa against OpenSSL.
func BenchmarkPairedSignedGET(b *testing.B) {
	goClient, osslClient, u := signedGETClients(b)
	paired(b, 4, func() { getOnce(b, goClient, u) }, func() { getOnce(b, osslClient, u) })
}

// callbackHandlers returns the callback middleware on a Store on
// crypto/rsa and on one verifying through OpenSSL, and one notification.
func callbackHandlers(b *testing.B) (goH, osslH http.Handler, header http.Header, body []byte) {
	srv := wechatpaytest.NewServer()
	b.Cleanup(srv.Close)
	m := srv.Merchant()
	handler := func(opts wechatpay.StoreOptions) http.Handler {
		store, err := wechatpay.NewStore(opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { store.Close() })
		if err := store.Register(srv.Config()); err != nil {
			b.Fatal(err)
		}
		if err := store.Refresh(context.Background(), m.ID); err != nil {
			b.Fatal(err)
		}
		return middleware.Notifications(middleware.Config{Keys: store, MerchantID: m.ID, APIv3Key: m.APIv3Key})(
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if n, ok := middleware.NotificationFrom(r.Context()); !ok || len(n.Plaintext) == 0 {
					b.Fatal("no notification")
				}
			}))
	}
	req, err := srv.NotificationRequest(context.Background(), "http://merchant.test/notify", "TRANSACTION.SUCCESS", nil)
	if err != nil {
		b.Fatal(err)
	}
	body, err = io.ReadAll(req.Body)
	if err != nil {
		b.Fatal(err)
	}
	return handler(wechatpay.StoreOptions{}), handler(wechatpay.StoreOptions{VerifyPKCS1v15: openssl.VerifyPKCS1v15}), req.Header, body
}

// BenchmarkPairedCallback: the callback middleware from request to the
// handler's 204 (verify, decrypt, parse), its Store verifying with
// crypto/rsa against OpenSSL.
func BenchmarkPairedCallback(b *testing.B) {
	goH, osslH, header, body := callbackHandlers(b)
	u := &url.URL{Path: "/notify"}
	serve := func(h http.Handler) func() {
		return func() {
			req := &http.Request{Method: http.MethodPost, URL: u, Header: header, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusNoContent {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	}
	paired(b, 16, serve(goH), serve(osslH))
}

// BenchmarkPairedVerifier: Verifier.Verify of the same notification
// alone (headers, skew, key lookup, hash, signature), crypto/rsa against
// OpenSSL.
func BenchmarkPairedVerifier(b *testing.B) {
	srv := wechatpaytest.NewServer()
	b.Cleanup(srv.Close)
	m := srv.Merchant()
	verifier := func(opts wechatpay.StoreOptions) *wechatpay.Verifier {
		store, err := wechatpay.NewStore(opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { store.Close() })
		if err := store.Register(srv.Config()); err != nil {
			b.Fatal(err)
		}
		return &wechatpay.Verifier{MerchantID: m.ID, Keys: store}
	}
	goV, osslV := verifier(wechatpay.StoreOptions{}), verifier(wechatpay.StoreOptions{VerifyPKCS1v15: openssl.VerifyPKCS1v15})
	req, err := srv.NotificationRequest(context.Background(), "http://merchant.test/notify", "TRANSACTION.SUCCESS", nil)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(req.Body)
	ctx := context.Background()
	check := func(v *wechatpay.Verifier) func() {
		return func() {
			if err := v.Verify(ctx, req.Header, body); err != nil {
				b.Fatal(err)
			}
		}
	}
	paired(b, 32, check(goV), check(osslV))
}
