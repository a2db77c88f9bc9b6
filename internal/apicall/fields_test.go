package apicall_test

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/apicall"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

type receiver struct {
	Account string `json:"account"`
	Name    string `json:"name,omitempty" wechatpay:"encrypt"`
}

type addRequest struct {
	AppID     string     `json:"appid"`
	UserName  string     `json:"user_name,omitempty" wechatpay:"encrypt"`
	Receivers []receiver `json:"receivers,omitempty"`
	Extra     *receiver  `json:"extra,omitempty"`
}

type answer struct {
	Phone  string `json:"payer_phone" wechatpay:"decrypt"`
	Serial string `json:"serial"`
	Names  []string
}

// seen is what the simulator's handler decrypted, with the key the
// request's Wechatpay-Serial named.
type seen struct {
	mu     sync.Mutex
	serial string
	names  []string
	err    error
}

func sensitiveRoute(t *testing.T, srv *wechatpaytest.Server, s *seen) {
	t.Helper()
	srv.Handle("POST /v3/test/sensitive", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req addRequest
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &req); err != nil {
			wechatpaytest.WriteError(w, 400, "PARAM_ERROR", "bad json")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.serial = r.Header.Get("Wechatpay-Serial")
		cts := []string{req.UserName}
		for _, rc := range req.Receivers {
			cts = append(cts, rc.Name)
		}
		if req.Extra != nil {
			cts = append(cts, req.Extra.Name)
		}
		for _, ct := range cts {
			if ct == "" {
				continue
			}
			pt, err := srv.DecryptField(r, ct)
			if err != nil {
				s.err = err
				wechatpaytest.WriteError(w, 400, "PARAM_ERROR", "平台证书序列号Wechatpay-Serial错误")
				return
			}
			s.names = append(s.names, pt)
		}
		phone, err := srv.EncryptField(wechatpaytest.MerchantIDFrom(r.Context()), "13800138000")
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(answer{Phone: phone, Serial: s.serial})
	}))
}

func TestSensitiveFieldsOneStep(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts []wechatpaytest.Option
	}{
		{"certificate", nil},
		{"public key", []wechatpaytest.Option{wechatpaytest.PublicKeyOnly()}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			srv := wechatpaytest.NewServer(mode.opts...)
			defer srv.Close()
			var s seen
			sensitiveRoute(t, srv, &s)
			tr, err := wechatpay.NewTransport(srv.Config())
			if err != nil {
				t.Fatal(err)
			}
			in := addRequest{AppID: "wx1", UserName: "张三",
				Receivers: []receiver{{Account: "a", Name: "李四"}, {Account: "b"}},
				Extra:     &receiver{Account: "c", Name: "王五"}}
			before := in
			beforeRecv := append([]receiver(nil), in.Receivers...)
			var out answer
			err = apicall.Do(context.Background(), "test", &http.Client{Transport: tr}, "POST", srv.URL+"/v3/test/sensitive", &in, &out)
			if err != nil {
				t.Fatalf("Do: %v (simulator: %v)", err, s.err)
			}
			want := srv.SigningSerial(srv.Merchant().ID)
			if s.serial != want {
				t.Errorf("Wechatpay-Serial = %q; want the key the fields were encrypted with, %q", s.serial, want)
			}
			if strings.Join(s.names, ",") != "张三,李四,王五" {
				t.Errorf("simulator decrypted %q; want 张三,李四,王五 (empty names stay empty)", s.names)
			}
			if out.Phone != "13800138000" {
				t.Errorf("payer_phone = %q; want it decrypted", out.Phone)
			}
			if in.UserName != before.UserName || in.Extra.Name != "王五" || in.Receivers[0] != beforeRecv[0] {
				t.Errorf("the caller's request was modified: %+v", in)
			}
		})
	}
}

func TestSensitiveFieldsInQuery(t *testing.T) {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	var got, serial string
	var derr error
	srv.Handle("GET /v3/test/query", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serial = r.Header.Get("Wechatpay-Serial")
		got, derr = srv.DecryptField(r, r.URL.Query().Get("user_name"))
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"limit":"`+r.URL.Query().Get("limit")+`","keep":"`+r.URL.Query().Get("keep")+`"}`)
	}))
	tr, err := wechatpay.NewTransport(srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	in := struct {
		UserName string `json:"user_name" wechatpay:"encrypt"`
		Limit    int    `json:"limit"`
		Offset   int    `json:"offset"`
	}{UserName: "张三", Limit: 10}
	var out struct{ Limit, Keep string }
	if err := apicall.Do(context.Background(), "test", &http.Client{Transport: tr}, "GET", srv.URL+"/v3/test/query?keep=1", &in, &out); err != nil {
		t.Fatal(err)
	}
	if derr != nil || got != "张三" {
		t.Errorf("simulator decrypted %q, %v; want 张三", got, derr)
	}
	if serial != srv.SigningSerial(srv.Merchant().ID) {
		t.Errorf("Wechatpay-Serial = %q", serial)
	}
	if out.Limit != "10" || out.Keep != "1" {
		t.Errorf("query carried limit=%q keep=%q; want 10 and the URL's own keep=1", out.Limit, out.Keep)
	}
}

// signOnly is a KMS-like key: it signs and cannot decrypt.
type signOnly struct{ crypto.Signer }

func TestSensitiveFieldsSignOnlyKey(t *testing.T) {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	var s seen
	sensitiveRoute(t, srv, &s)
	cfg := srv.Config()
	cfg.PrivateKey = signOnly{cfg.PrivateKey}
	tr, err := wechatpay.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out answer
	err = apicall.Do(context.Background(), "test", &http.Client{Transport: tr}, "POST", srv.URL+"/v3/test/sensitive", &addRequest{UserName: "张三"}, &out)
	if err == nil || !strings.Contains(err.Error(), "cannot decrypt") || !strings.Contains(err.Error(), "payer_phone") || !strings.Contains(err.Error(), "succeeded") {
		t.Fatalf("err = %v; want one that says the call succeeded and payer_phone cannot be decrypted by a sign-only key", err)
	}
	if strings.Contains(err.Error(), "13800138000") || out.Phone == "13800138000" {
		t.Fatal("plaintext leaked")
	}
}

func TestSensitiveFieldsNeedTheTransport(t *testing.T) {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	var s seen
	sensitiveRoute(t, srv, &s)
	// A client whose Transport is not a wechatpay.Transport never gets
	// a field sent in clear: the request is refused by the simulator
	// (unsigned) and nothing reaches the handler.
	var out answer
	err := apicall.Do(context.Background(), "test", &http.Client{Transport: srv.Config().Base}, "POST", srv.URL+"/v3/test/sensitive", &addRequest{UserName: "张三"}, &out)
	if err == nil {
		t.Fatal("a call without the Transport succeeded")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.names) != 0 {
		t.Fatalf("the handler saw %d names", len(s.names))
	}
	var ae *wechatpay.APIError
	if !errors.As(err, &ae) || ae.Code != "SIGN_ERROR" && ae.StatusCode != 401 {
		t.Fatalf("err = %v; want the simulator's refusal of an unsigned call", err)
	}
}

// forger stands for an attacker on the network: the request reaches
// WeChat Pay, and the answer is replaced by an unsigned refusal.
type forger struct{ base http.RoundTripper }

func (f forger) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := f.base.RoundTrip(r)
	if err != nil || r.Method == http.MethodGet {
		return resp, err
	}
	resp.Body.Close()
	body := `{"code":"PARAM_ERROR","message":"参数错误"}`
	return &http.Response{StatusCode: 400, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
}

// TestForgedRefusalIsAnUnknownOutcome: an error answer that is not
// verified to a state-changing call is an unknown outcome, never a
// refusal the merchant could act on by sending a new number.
func TestForgedRefusalIsAnUnknownOutcome(t *testing.T) {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	var s seen
	sensitiveRoute(t, srv, &s)
	cfg := srv.Config()
	cfg.Base = forger{cfg.Base}
	tr, err := wechatpay.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = apicall.Do(context.Background(), "test", &http.Client{Transport: tr}, "POST", srv.URL+"/v3/test/sensitive", &addRequest{UserName: "张三"}, nil)
	err = apicall.Outcome(err, "out_bill_no", "B20261202001")
	var unknown *wechatpay.OutcomeUnknownError
	if !errors.As(err, &unknown) || wechatpay.Retryable(err) || unknown.Number != "B20261202001" {
		t.Fatalf("forged 400 = %v; want a non-retryable OutcomeUnknownError naming B20261202001", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.names) != 1 {
		t.Errorf("the call reached the simulator %d times; want once", len(s.names))
	}
}
