package wechatpay_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// rstListener accepts connections, reads the request (headers and body)
// and resets the connection (SO_LINGER 0): the request reached the server,
// no answer came back.
func rstListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 64<<10)
			var got []byte
			for !strings.Contains(string(got), "\r\n\r\n") || !strings.HasSuffix(string(got), "}") {
				n, err := c.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					break
				}
			}
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestRetryAndOutcomeUnknown classifies real failures produced through a
// Transport over loopback, as a caller sees them.
func TestRetryAndOutcomeUnknown(t *testing.T) {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	received := make(chan string, 16)
	srv.Handle("/v3/test/{case}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		c := r.PathValue("case")
		received <- c
		switch c {
		case "hang":
			select { // until the client gives up
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		case "abort":
			panic(http.ErrAbortHandler) // close the connection without an answer
		case "429":
			wechatpaytest.WriteError(w, http.StatusTooManyRequests, "FREQUENCY_LIMITED", "频率超限")
		case "500":
			wechatpaytest.WriteError(w, http.StatusInternalServerError, "SYSTEM_ERROR", "系统错误")
		case "400":
			wechatpaytest.WriteError(w, http.StatusBadRequest, "PARAM_ERROR", "参数错误")
		case "403":
			wechatpaytest.WriteError(w, http.StatusForbidden, "ORDERPAID", "该订单已支付")
		default:
			w.Write([]byte(`{"prepay_id":"wx201410272009395522657a690389285100"}`))
		}
	}))
	cfg := srv.Config()
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cfg.Store = store
	tr, err := wechatpay.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	defer http.DefaultTransport.(*http.Transport).CloseIdleConnections()

	// Clients whose connections go elsewhere: the same Transport setup
	// (signing for the sandbox's host), another place on the wire.
	dialTo := func(addr string) *http.Client {
		base := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}
		t.Cleanup(base.CloseIdleConnections)
		c := cfg
		c.Base = base
		c.Store = nil // its own: registering other trust inputs would reset the shared one
		tr, err := wechatpay.NewTransport(c)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Client{Transport: tr, Timeout: 2 * time.Second}
	}
	// A client with a cold Store of its own, which must download
	// certificates to verify its first answer.
	cold := func() *http.Client {
		c := cfg
		c.Store = nil
		tr, err := wechatpay.NewTransport(c)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Client{Transport: tr, Timeout: 2 * time.Second}
	}
	resetClient := dialTo(rstListener(t))
	refusedClient := dialTo(closedAddr(t))

	// call does what a caller (or package payments) does with a client.
	call := func(c *http.Client, method, path string) error {
		var body io.Reader
		if method != http.MethodGet {
			body = strings.NewReader(`{"out_trade_no":"T1"}`)
		}
		req, err := http.NewRequest(method, srv.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			return wechatpay.ClassifyError(req, err)
		}
		defer resp.Body.Close()
		return wechatpay.CheckResponse(resp)
	}

	tests := []struct {
		name      string
		client    *http.Client
		method    string
		path      string
		timeout   time.Duration
		fault     wechatpaytest.Fault
		certFault wechatpaytest.CertFault
		unknown   bool // an *OutcomeUnknownError
		retryable bool
		requestID bool // the error carries a Request-ID
		reached   bool // the sandbox's handler saw the request
	}{
		{name: "POST hangs after reading the body, client timeout", method: "POST", path: "/v3/test/hang", timeout: 300 * time.Millisecond, unknown: true, reached: true},
		{name: "POST connection closed without an answer", method: "POST", path: "/v3/test/abort", unknown: true, reached: true},
		{name: "POST connection reset after the request", client: resetClient, method: "POST", path: "/v3/test/reset", unknown: true},
		{name: "POST 2xx with a tampered body", method: "POST", path: "/v3/test/ok", fault: wechatpaytest.FaultTamperBody, unknown: true, requestID: true, reached: true},
		{name: "POST 2xx with a probe signature", method: "POST", path: "/v3/test/ok", fault: wechatpaytest.FaultProbe, unknown: true, requestID: true, reached: true},
		{name: "POST 2xx but the certificate download answers 500", client: cold(), method: "POST", path: "/v3/test/ok", certFault: wechatpaytest.CertStatus500, unknown: true, requestID: true, reached: true},
		{name: "POST 429 FREQUENCY_LIMITED", method: "POST", path: "/v3/test/429", retryable: true, requestID: true, reached: true},
		{name: "POST 500 SYSTEM_ERROR", method: "POST", path: "/v3/test/500", retryable: true, requestID: true, reached: true},
		{name: "POST 400 PARAM_ERROR", method: "POST", path: "/v3/test/400", requestID: true, reached: true},
		{name: "POST 403 ORDERPAID", method: "POST", path: "/v3/test/403", requestID: true, reached: true},
		{name: "POST connection refused", client: refusedClient, method: "POST", path: "/v3/test/x", retryable: true},
		{name: "GET hangs, client timeout: not state-changing", method: "GET", path: "/v3/test/hang", timeout: 300 * time.Millisecond, reached: true},
		{name: "GET 2xx with a tampered body", method: "GET", path: "/v3/test/ok", fault: wechatpaytest.FaultTamperBody, reached: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := client
			if tc.client != nil {
				c = tc.client
			}
			if tc.timeout != 0 {
				cc := *c
				cc.Timeout = tc.timeout
				c = &cc
			}
			srv.SetFault(tc.fault)
			defer srv.SetFault(wechatpaytest.FaultNone)
			srv.SetCertFault(tc.certFault)
			defer srv.SetCertFault(wechatpaytest.CertOK)
			for len(received) > 0 {
				<-received
			}

			err := call(c, tc.method, tc.path)
			if err == nil {
				t.Fatal("call succeeded; want an error")
			}
			var unknown *wechatpay.OutcomeUnknownError
			if got := errors.As(err, &unknown); got != tc.unknown {
				t.Errorf("OutcomeUnknownError = %v; want %v (err: %v)", got, tc.unknown, err)
			}
			if got := wechatpay.Retryable(err); got != tc.retryable {
				t.Errorf("Retryable = %v; want %v (err: %v)", got, tc.retryable, err)
			}
			if tc.unknown && unknown != nil {
				msg := err.Error()
				for _, want := range []string{"outcome unknown", tc.method + " " + tc.path, "query by your own order or refund number"} {
					if !strings.Contains(msg, want) {
						t.Errorf("message %q lacks %q", msg, want)
					}
				}
				if tc.requestID && (unknown.RequestID == "" || !strings.Contains(msg, unknown.RequestID)) {
					t.Errorf("RequestID %q missing from the error %q", unknown.RequestID, msg)
				}
			}
			if !tc.unknown && tc.requestID {
				var apiErr *wechatpay.APIError
				if !errors.As(err, &apiErr) || apiErr.RequestID == "" {
					t.Errorf("err = %v; want an *APIError with a Request-ID", err)
				}
			}
			if tc.fault != wechatpaytest.FaultNone || tc.certFault != wechatpaytest.CertOK {
				var verr *wechatpay.VerifyError
				if !errors.As(err, &verr) {
					t.Errorf("err = %v; want a *VerifyError inside", err)
				}
			}
			select {
			case <-received:
				if !tc.reached {
					t.Error("the sandbox saw a request it should not have")
				}
			default:
				if tc.reached {
					t.Error("the sandbox never saw the request")
				}
			}
		})
	}
}

func TestClassifyErrorLeavesOthersAlone(t *testing.T) {
	post, _ := http.NewRequest("POST", "https://api.mch.weixin.qq.com/v3/refund/domestic/refunds", nil)
	if wechatpay.ClassifyError(post, nil) != nil {
		t.Error("ClassifyError(nil) != nil")
	}
	// Refused before sending: nothing can have happened.
	if err := wechatpay.ClassifyError(post, wechatpay.ErrNotConfigured); err != wechatpay.ErrNotConfigured {
		t.Errorf("ClassifyError(ErrNotConfigured) = %v; want it unchanged", err)
	}
	// Refused by the Transport before sending: a signer (KMS) failure, an
	// oversized body. Nothing was sent, so the outcome is known.
	kms := &wechatpay.Transport{
		Signer:   &wechatpay.Signer{MerchantID: "1900000001", CertificateSerial: "5157F09EFDC096DE15EBE81A47057A7232F1B8E1", Key: failingSigner{}},
		Verifier: &wechatpay.Verifier{MerchantID: "1900000001", Keys: noKeys{}},
		Base:     failIfSent{t},
	}
	small := &wechatpay.Transport{Signer: kms.Signer, Verifier: kms.Verifier, Base: failIfSent{t}, MaxBodySize: 4}
	for name, tr := range map[string]*wechatpay.Transport{"signer failure": kms, "body too large": small} {
		req, _ := http.NewRequest("POST", "https://api.mch.weixin.qq.com/v3/refund/domestic/refunds", strings.NewReader(`{"out_refund_no":"R1"}`))
		_, err := (&http.Client{Transport: tr}).Do(req)
		var unknown *wechatpay.OutcomeUnknownError
		if err == nil || errors.As(wechatpay.ClassifyError(req, err), &unknown) {
			t.Errorf("%s: ClassifyError(%v) says the outcome is unknown; nothing was sent", name, err)
		}
	}
	// Already classified: not wrapped twice.
	first := wechatpay.ClassifyError(post, io.ErrUnexpectedEOF)
	if again := wechatpay.ClassifyError(post, first); again != first {
		t.Errorf("classified twice: %v", again)
	}
	if wechatpay.Retryable(nil) {
		t.Error("Retryable(nil) = true")
	}
}

type failingSigner struct{}

func (failingSigner) Public() crypto.PublicKey { return nil }
func (failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("kms: unavailable")
}

type noKeys struct{}

func (noKeys) PublicKey(context.Context, string, string) (*rsa.PublicKey, error) {
	return nil, wechatpay.ErrUnknownSerial
}

type failIfSent struct{ t *testing.T }

func (f failIfSent) RoundTrip(*http.Request) (*http.Response, error) {
	f.t.Error("a request was sent")
	return nil, errors.New("sent")
}
