package wechatpay_test

// Attacks on the Transport's promises, played over loopback against the
// sandbox by a man in the middle (a Base that rewrites responses, as a
// TLS-intercepting proxy or an http:// BaseURL allows) and by a second
// server standing in for the attacker's host.

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
)

// mitm forwards to the sandbox, except that forge, when it returns a
// response, is answered instead.
type mitm struct {
	next  http.RoundTripper
	forge func(r *http.Request) *http.Response
}

func (m *mitm) RoundTrip(r *http.Request) (*http.Response, error) {
	if resp := m.forge(r); resp != nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return resp, nil
	}
	return m.next.RoundTrip(r)
}

func forged(r *http.Request, status int, h http.Header, body string) *http.Response {
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}
}

const forgedPaid = `{"trade_state":"SUCCESS","transaction_id":"4200000000000000000000000042"}`

// attackerHost is a second server; it records every Authorization header
// it receives.
type attackerHost struct {
	*httptest.Server
	mu    sync.Mutex
	auths []string
	paths []string
}

func newAttackerHost(t *testing.T) *attackerHost {
	a := &attackerHost{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.auths = append(a.auths, r.Header.Get("Authorization"))
		a.paths = append(a.paths, r.URL.RequestURI())
		a.mu.Unlock()
		io.WriteString(w, forgedPaid)
	}))
	t.Cleanup(a.Close)
	return a
}

// validAuthorizations counts the Authorization headers received that carry
// a signature the merchant's key really made (for any of the requests).
func (a *attackerHost) validAuthorizations(pub *rsa.PublicKey) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for i, h := range a.auths {
		if h == "" {
			continue
		}
		n += countValid(h, a.paths[i], pub)
	}
	return n
}

func countValid(h, uri string, pub *rsa.PublicKey) int {
	fields := map[string]string{}
	for _, kv := range strings.Split(strings.TrimPrefix(h, "WECHATPAY2-SHA256-RSA2048 "), ",") {
		k, v, _ := strings.Cut(kv, "=")
		fields[k] = strings.Trim(v, `"`)
	}
	sig, err := base64.StdEncoding.DecodeString(fields["signature"])
	if err != nil {
		return 0
	}
	for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		msg := method + "\n" + uri + "\n" + fields["timestamp"] + "\n" + fields["nonce_str"] + "\n\n"
		d := sha256.Sum256([]byte(msg))
		if rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig) == nil {
			return 1
		}
	}
	return 0
}

func TestUnsignedRedirectNeverTurnsVerificationOff(t *testing.T) {
	srv := newSandbox(t)
	cfg := srv.Config()
	for _, tc := range []struct {
		name   string
		status int
		mark   bool // the caller's own request is a marked download
	}{
		{"302 to bill path", http.StatusFound, false},
		{"307 to bill path", http.StatusTemporaryRedirect, false},
		{"301 from a marked download", http.StatusMovedPermanently, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			followed := 0
			cfg.Base = &mitm{next: srv.Config().Base, forge: func(r *http.Request) *http.Response {
				switch {
				case strings.HasPrefix(r.URL.Path, "/v3/pay/transactions/id/"):
					h := http.Header{"Location": {"/v3/billdownload/file?token=forged"}}
					return forged(r, tc.status, h, "")
				case r.URL.Path == "/v3/billdownload/file":
					followed++
					return forged(r, http.StatusOK, nil, forgedPaid)
				}
				return nil
			}}
			client, _ := newClient(t, cfg, wechatpay.StoreOptions{})
			ctx := context.Background()
			if tc.mark {
				ctx = wechatpay.WithoutResponseVerification(ctx)
			}
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v3/pay/transactions/id/42?mchid="+cfg.MerchantID, nil)
			resp, err := client.Do(req)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				t.Fatalf("forged redirect: got HTTP %d %q, want a verification error", resp.StatusCode, body)
			}
			var ve *wechatpay.VerifyError
			if !errors.As(err, &ve) || !errors.Is(err, wechatpay.ErrMissingSignature) {
				t.Fatalf("err = %v, want a *VerifyError wrapping ErrMissingSignature", err)
			}
			if followed != 0 {
				t.Errorf("the unsigned redirect was followed %d times", followed)
			}
		})
	}
}

func TestRedirectFollowUpNeverExempt(t *testing.T) {
	// Even a marked download loses its exemption on a redirect: the
	// request http.Client makes to follow it must be verified.
	srv := newSandbox(t)
	cfg := srv.Config()
	cfg.Base = &mitm{next: srv.Config().Base, forge: func(r *http.Request) *http.Response {
		if r.URL.Path == "/v3/billdownload/file" && r.URL.Query().Get("hop") == "" {
			return forged(r, http.StatusOK, nil, forgedPaid)
		}
		return nil
	}}
	tr, err := wechatpay.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(wechatpay.WithoutResponseVerification(context.Background()), "GET", srv.URL+"/v3/billdownload/file?token=x", nil)
	req.Response = &http.Response{StatusCode: http.StatusFound} // as http.Client sets it when following
	if resp, err := tr.RoundTrip(req); err == nil {
		resp.Body.Close()
		t.Fatal("a redirect follow-up was passed on unverified")
	}
}

func TestTransportIsNoSigningOracle(t *testing.T) {
	srv := newSandbox(t)
	cfg := srv.Config()
	evil := newAttackerHost(t)
	pub := &cfg.PrivateKey.(*rsa.PrivateKey).PublicKey

	t.Run("direct request to another host", func(t *testing.T) {
		client, _ := newClient(t, cfg, wechatpay.StoreOptions{})
		_, err := client.Get(evil.URL + "/v3/merchant/fund/balance/BASIC")
		if !errors.Is(err, wechatpay.ErrHostNotAllowed) {
			t.Fatalf("err = %v, want ErrHostNotAllowed", err)
		}
	})
	t.Run("forged 307 to another host", func(t *testing.T) {
		c := cfg
		// The man in the middle answers with a redirect to the attacker's
		// host, which the same Base can reach.
		c.Base = &hostSwitch{
			sandbox: &mitm{next: srv.Config().Base, forge: func(r *http.Request) *http.Response {
				if strings.HasPrefix(r.URL.Path, "/v3/echo/") {
					return forged(r, http.StatusTemporaryRedirect, http.Header{"Location": {evil.URL + "/v3/merchant/fund/balance/BASIC"}}, "")
				}
				return nil
			}},
			other:     http.DefaultTransport,
			otherHost: evil.Listener.Addr().String(),
		}
		client, _ := newClient(t, c, wechatpay.StoreOptions{})
		_, err := client.Get(srv.URL + "/v3/echo/x")
		if !errors.Is(err, wechatpay.ErrMissingSignature) {
			t.Fatalf("forged 307: err = %v, want ErrMissingSignature", err)
		}
	})
	t.Run("signed 307 to another host", func(t *testing.T) {
		// Even a redirect with a good signature cannot send a signature
		// to another host: the follow-up request is refused unsent.
		srv.Handle("/v3/redirect-out", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", evil.URL+"/v3/merchant/fund/balance/BASIC")
			w.WriteHeader(http.StatusTemporaryRedirect)
		}))
		client, _ := newClient(t, cfg, wechatpay.StoreOptions{})
		_, err := client.Get(srv.URL + "/v3/redirect-out")
		if !errors.Is(err, wechatpay.ErrHostNotAllowed) {
			t.Fatalf("err = %v, want ErrHostNotAllowed", err)
		}
	})
	t.Run("scheme downgrade", func(t *testing.T) {
		c := cfg
		c.BaseURL = strings.Replace(srv.URL, "http://", "https://", 1)
		client, _ := newClient(t, c, wechatpay.StoreOptions{})
		_, err := client.Get(srv.URL + "/v3/echo/x") // http:// while BaseURL is https://
		if !errors.Is(err, wechatpay.ErrHostNotAllowed) {
			t.Fatalf("err = %v, want ErrHostNotAllowed", err)
		}
	})
	if n := evil.validAuthorizations(pub); n != 0 {
		t.Fatalf("the attacker's host received %d valid merchant signatures", n)
	}
	evil.mu.Lock()
	defer evil.mu.Unlock()
	if len(evil.auths) != 0 {
		t.Fatalf("the attacker's host received %d requests", len(evil.auths))
	}
}

// hostSwitch sends requests for otherHost to other, the rest to sandbox.
type hostSwitch struct {
	sandbox, other http.RoundTripper
	otherHost      string
}

func (h *hostSwitch) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host == h.otherHost {
		return h.other.RoundTrip(r)
	}
	return h.sandbox.RoundTrip(r)
}

func TestPathsNeverSteerTheExemption(t *testing.T) {
	srv := newSandbox(t)
	for _, p := range []string{
		"/v3/merchant-service/images/../../pay/transactions/id/42",
		"/v3/merchant-service/images/%2e%2e/%2e%2e/pay/transactions/id/42",
		"/v3/merchant-service/images/..%2F..%2Fpay/transactions/id/42",
		"/v3/billdownload/file",
		"/v3/statements",
	} {
		cfg := srv.Config()
		cfg.Base = &mitm{next: srv.Config().Base, forge: func(r *http.Request) *http.Response {
			return forged(r, http.StatusOK, nil, forgedPaid)
		}}
		client, _ := newClient(t, cfg, wechatpay.StoreOptions{})
		resp, err := client.Get(srv.URL + p)
		if err == nil {
			resp.Body.Close()
			t.Errorf("GET %s: unsigned 200 passed on", p)
			continue
		}
		if !errors.Is(err, wechatpay.ErrMissingSignature) {
			t.Errorf("GET %s: err = %v, want ErrMissingSignature", p, err)
		}
	}
}

// wrapBody wraps every response body, as tracing and logging transports do.
type wrapBody struct{ next http.RoundTripper }

type wrappedBody struct{ io.ReadCloser }

func (w wrapBody) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := w.next.RoundTrip(r)
	if err == nil {
		resp.Body = wrappedBody{resp.Body}
	}
	return resp, err
}

func TestIsVerifiedSurvivesWrappingAndCannotBeForged(t *testing.T) {
	srv := newSandbox(t)
	srv.Handle("/v3/forge-verified", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Wxpaykit-Verified", "true")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{}`)
	}))
	cfg := srv.Config()
	tr, err := wechatpay.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, client := range []*http.Client{
		{Transport: tr, Timeout: 10 * time.Second},
		{Transport: wrapBody{tr}},
	} {
		resp, err := client.Get(srv.URL + "/v3/echo/wrapped")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !wechatpay.IsVerified(resp) {
			t.Errorf("client %+v: IsVerified = false for a verified 200", client)
		}
		resp, err = client.Get(srv.URL + "/v3/no-such-route")
		if err != nil {
			t.Fatal(err)
		}
		apiErr, ok := wechatpay.CheckResponse(resp).(*wechatpay.APIError)
		resp.Body.Close()
		if !ok || !apiErr.Verified {
			t.Errorf("signed 404 through a wrapping client: APIError %+v, want Verified", apiErr)
		}
	}
	// A server cannot make an unverified response look verified.
	plain := &http.Client{Transport: srv.Config().Base}
	resp, err := plain.Get(srv.URL + "/v3/forge-verified")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if wechatpay.IsVerified(resp) {
		t.Error("IsVerified = true for a response that bypassed the Transport and set the header itself")
	}
	cfg.Base = &mitm{next: srv.Config().Base, forge: func(r *http.Request) *http.Response {
		return forged(r, http.StatusBadRequest, http.Header{"X-Wxpaykit-Verified": {"true"}}, `{"code":"PARAM_ERROR"}`)
	}}
	client, _ := newClient(t, cfg, wechatpay.StoreOptions{})
	resp, err = client.Get(srv.URL + "/v3/echo/x")
	if err != nil {
		t.Fatal(err)
	}
	apiErr, _ := wechatpay.CheckResponse(resp).(*wechatpay.APIError)
	resp.Body.Close()
	if wechatpay.IsVerified(resp) || apiErr == nil || apiErr.Verified {
		t.Errorf("forged header on an unsigned 400: IsVerified = %v, APIError %+v", wechatpay.IsVerified(resp), apiErr)
	}
}
