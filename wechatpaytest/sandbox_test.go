package wechatpaytest

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
)

// newRequest builds a request to srv signed for merchant m, as a client
// would send it. Tests may spoil it before sending.
func newRequest(t *testing.T, srv *Server, m Merchant, method, uri string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+uri, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	signer := &wechatpay.Signer{MerchantID: m.ID, CertificateSerial: m.CertificateSerial, Key: m.PrivateKey}
	auth, err := signer.Authorization(method, req.URL.RequestURI(), body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "wechatpaytest-test/1.0")
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	return req
}

// send sends req with a plain client and returns the response and its body.
func send(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// do signs and sends a request for m.
func do(t *testing.T, srv *Server, m Merchant, method, uri string, body []byte) (*http.Response, []byte) {
	t.Helper()
	return send(t, newRequest(t, srv, m, method, uri, body))
}

// keyFor returns the public key that srv uses for serial and merchant m.
func keyFor(t *testing.T, srv *Server, m Merchant, serial string) *rsa.PublicKey {
	t.Helper()
	if serial != "" && serial == m.PublicKeyID {
		return m.PublicKey
	}
	for _, c := range srv.Certificates(m.ID) {
		if wire.CertSerial(c) == serial {
			return c.PublicKey.(*rsa.PublicKey)
		}
	}
	t.Fatalf("merchant %s has no key %q", m.ID, serial)
	return nil
}

// verify checks the signature headers of a response with key.
func verify(resp *http.Response, body []byte, key *rsa.PublicKey) error {
	h := resp.Header
	for _, name := range []string{wire.HeaderTimestamp, wire.HeaderNonce, wire.HeaderSignature, wire.HeaderSerial} {
		if h.Get(name) == "" {
			return fmt.Errorf("no %s header", name)
		}
	}
	if got := h.Get(wire.HeaderSignatureType); got != wire.SchemeRSA {
		return fmt.Errorf("%s = %q; want %q", wire.HeaderSignatureType, got, wire.SchemeRSA)
	}
	msg := wire.ResponseMessage(h.Get(wire.HeaderTimestamp), h.Get(wire.HeaderNonce), body)
	return wire.Verify(key, msg, h.Get(wire.HeaderSignature))
}

// mustVerify checks that resp is signed by the merchant's key named in
// Wechatpay-Serial, and that this is wantSerial.
func mustVerify(t *testing.T, srv *Server, m Merchant, resp *http.Response, body []byte, wantSerial string) {
	t.Helper()
	serial := resp.Header.Get(wire.HeaderSerial)
	if serial != wantSerial {
		t.Fatalf("Wechatpay-Serial = %q; want %q", serial, wantSerial)
	}
	if err := verify(resp, body, keyFor(t, srv, m, serial)); err != nil {
		t.Fatalf("response signature: %v", err)
	}
}

// wantError checks a WeChat Pay error response.
func wantError(t *testing.T, resp *http.Response, body []byte, status int, code string) errorBody {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d; want %d (body %s)", resp.StatusCode, status, body)
	}
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if e.Code != code {
		t.Errorf("code = %q; want %q (message %q)", e.Code, code, e.Message)
	}
	if e.Message == "" {
		t.Error("error has no message")
	}
	return e
}

func handleTransaction(srv *Server) {
	srv.Handle("GET /v3/pay/transactions/id/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"transaction_id":%q,"mchid":%q,"query":%q}`, r.PathValue("id"), MerchantIDFrom(r.Context()), r.URL.RawQuery)
	}))
}

func TestSignedRoundTrip(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	m := srv.Merchant()
	handleTransaction(srv)
	srv.Handle("POST /v3/pay/transactions/native", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Echo", "yes")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"echo":%s}`, b)
	}))
	srv.Handle("POST /v3/pay/transactions/out-trade-no/{no}/close", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))

	t.Run("GET", func(t *testing.T) {
		resp, body := do(t, srv, m, "GET", "/v3/pay/transactions/id/4200?mchid="+m.ID+"&note=%E4%BD%A0%20x", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d; want 200 (body %s)", resp.StatusCode, body)
		}
		want := fmt.Sprintf(`{"transaction_id":"4200","mchid":%q,"query":"mchid=%s&note=%%E4%%BD%%A0%%20x"}`, m.ID, m.ID)
		if string(body) != want {
			t.Errorf("body = %s; want %s", body, want)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q; want application/json", ct)
		}
		if id := resp.Header.Get("Request-ID"); len(id) < 16 {
			t.Errorf("Request-ID = %q; want a random ID", id)
		}
		mustVerify(t, srv, m, resp, body, srv.SigningSerial(m.ID))
		// The signature covers the body: a different body must not verify.
		if err := verify(resp, append(body, ' '), keyFor(t, srv, m, srv.SigningSerial(m.ID))); err == nil {
			t.Error("signature also verifies a different body")
		}
	})
	t.Run("POST", func(t *testing.T) {
		resp, body := do(t, srv, m, "POST", "/v3/pay/transactions/native", []byte(`{"amount":{"total":1}}`))
		if resp.StatusCode != http.StatusCreated || string(body) != `{"echo":{"amount":{"total":1}}}` {
			t.Fatalf("got %d %s; want 201 with the echo", resp.StatusCode, body)
		}
		if resp.Header.Get("X-Echo") != "yes" {
			t.Error("handler header lost")
		}
		mustVerify(t, srv, m, resp, body, srv.SigningSerial(m.ID))
	})
	t.Run("204", func(t *testing.T) {
		resp, body := do(t, srv, m, "POST", "/v3/pay/transactions/out-trade-no/A1/close", []byte(`{"mchid":"x"}`))
		if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
			t.Fatalf("got %d %q; want 204 and no body", resp.StatusCode, body)
		}
		mustVerify(t, srv, m, resp, nil, srv.SigningSerial(m.ID))
	})
	if got := srv.Requests(); got != 3 {
		t.Errorf("Requests() = %d; want 3", got)
	}
	if got := srv.CertificateDownloads(); got != 0 {
		t.Errorf("CertificateDownloads() = %d; want 0", got)
	}
}

func TestUnknownRoute(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	m := srv.Merchant()
	handleTransaction(srv)

	resp, body := do(t, srv, m, "GET", "/v3/nothing/here", nil)
	wantError(t, resp, body, http.StatusNotFound, "NOT_FOUND")
	mustVerify(t, srv, m, resp, body, srv.SigningSerial(m.ID))

	resp, body = do(t, srv, m, "DELETE", "/v3/pay/transactions/id/1", nil)
	wantError(t, resp, body, http.StatusMethodNotAllowed, "INVALID_REQUEST")
	if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "GET") {
		t.Errorf("Allow = %q; want GET", allow)
	}
	if got := srv.Requests(); got != 0 {
		t.Errorf("Requests() = %d; want 0", got)
	}
}

func TestAuthenticationErrors(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	m := srv.Merchant()
	var reached atomic.Bool
	srv.Handle("POST /v3/pay/transactions/native", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Store(true)
	}))
	const uri = "/v3/pay/transactions/native"
	body := []byte(`{"amount":{"total":1}}`)
	signer := &wechatpay.Signer{MerchantID: m.ID, CertificateSerial: m.CertificateSerial, Key: m.PrivateKey}
	other := srv.AddMerchant()

	authAt := func(t *testing.T, s *wechatpay.Signer, ts int64) string {
		a, err := s.AuthorizationAt("POST", uri, body, ts, wire.NewNonce())
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	tests := []struct {
		name    string
		spoil   func(t *testing.T, r *http.Request)
		status  int
		code    string
		message string
	}{
		{"missing Accept", func(t *testing.T, r *http.Request) { r.Header.Del("Accept") },
			400, "INVALID_REQUEST", msgNoAcceptOrUA},
		{"missing User-Agent", func(t *testing.T, r *http.Request) { r.Header.Set("User-Agent", "") },
			400, "INVALID_REQUEST", msgNoAcceptOrUA},
		{"no Authorization", func(t *testing.T, r *http.Request) { r.Header.Del("Authorization") },
			401, "SIGN_ERROR", msgAuthFormat},
		{"malformed Authorization", func(t *testing.T, r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), `mchid="`, `mchid=`, 1))
		}, 401, "SIGN_ERROR", msgAuthFormat},
		{"wrong scheme", func(t *testing.T, r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), wire.SchemeRSA, "Bearer", 1))
		}, 401, "SIGN_ERROR", msgAuthFormat},
		{"unknown merchant", func(t *testing.T, r *http.Request) {
			s := *signer
			s.MerchantID = "1234567890"
			r.Header.Set("Authorization", authAt(t, &s, time.Now().Unix()))
		}, 401, "SIGN_ERROR", msgUnknownMerchant},
		{"wrong serial_no", func(t *testing.T, r *http.Request) {
			s := *signer
			s.CertificateSerial = other.CertificateSerial
			r.Header.Set("Authorization", authAt(t, &s, time.Now().Unix()))
		}, 401, "SIGN_ERROR", msgMerchantSerial},
		{"stale timestamp", func(t *testing.T, r *http.Request) {
			r.Header.Set("Authorization", authAt(t, signer, time.Now().Add(-6*time.Minute).Unix()))
		}, 401, "SIGN_ERROR", msgTimestamp},
		{"future timestamp", func(t *testing.T, r *http.Request) {
			r.Header.Set("Authorization", authAt(t, signer, time.Now().Add(6*time.Minute).Unix()))
		}, 401, "SIGN_ERROR", msgTimestamp},
		{"signed by another key", func(t *testing.T, r *http.Request) {
			s := *signer
			s.Key = takeKey(m.PrivateKey) // pooled keys may repeat across merchants
			r.Header.Set("Authorization", authAt(t, &s, time.Now().Unix()))
		}, 401, "SIGN_ERROR", msgBadSignature},
		{"tampered body", func(t *testing.T, r *http.Request) {
			b := bytes.Replace(body, []byte("1"), []byte("2"), 1)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		}, 401, "SIGN_ERROR", msgBadSignature},
		{"tampered query", func(t *testing.T, r *http.Request) { r.URL.RawQuery = "x=1" },
			401, "SIGN_ERROR", msgBadSignature},
		{"unknown Wechatpay-Serial", func(t *testing.T, r *http.Request) { r.Header.Set(wire.HeaderSerial, newSerialHex()) },
			400, "PARAM_ERROR", msgRequestSerial},
		{"other merchant's Wechatpay-Serial", func(t *testing.T, r *http.Request) {
			r.Header.Set(wire.HeaderSerial, srv.SigningSerial(other.ID))
		}, 400, "PARAM_ERROR", msgRequestSerial},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reached.Store(false)
			req := newRequest(t, srv, m, "POST", uri, body)
			tc.spoil(t, req)
			resp, got := send(t, req)
			e := wantError(t, resp, got, tc.status, tc.code)
			if e.Message != tc.message {
				t.Errorf("message = %q; want %q", e.Message, tc.message)
			}
			if reached.Load() {
				t.Error("the handler ran")
			}
			// Errors are signed too, with the default merchant's certificate.
			mustVerify(t, srv, m, resp, got, srv.SigningSerial(m.ID))
		})
	}
	if got := srv.Requests(); got != 0 {
		t.Errorf("Requests() = %d; want 0", got)
	}

	t.Run("sign_information", func(t *testing.T) {
		req := newRequest(t, srv, m, "POST", uri+"?a=%7B1%7D", body)
		req.Body = io.NopCloser(strings.NewReader(`{"amount":{"total":2}}`))
		resp, got := send(t, req)
		var e struct {
			Code   string
			Detail struct {
				Detail   struct{ Issue string }
				Field    string
				Location string
				Info     signInformation `json:"sign_information"`
			}
		}
		if err := json.Unmarshal(got, &e); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 401 || e.Code != "SIGN_ERROR" || e.Detail.Field != "signature" || e.Detail.Location != "authorization" || e.Detail.Detail.Issue != "sign not match" {
			t.Errorf("got %d %s; want 401 SIGN_ERROR with detail", resp.StatusCode, got)
		}
		info := e.Detail.Info
		if info.Method != "POST" || info.URL != uri+"?a=%7B1%7D" {
			t.Errorf("sign_information = %+v; want method POST and the raw URL", info)
		}
		auth, _ := wire.ParseAuthorization(req.Header.Get("Authorization"))
		ts, _ := strconv.ParseInt(auth.Timestamp, 10, 64)
		full := wire.RequestMessage("POST", uri+"?a=%7B1%7D", ts, auth.Nonce, []byte(`{"amount":{"total":2}}`))
		if info.SignMessageLength != len(full) {
			t.Errorf("sign_message_length = %d; want %d", info.SignMessageLength, len(full))
		}
		wantTrunc := fmt.Sprintf("POST\n%s?a=%%7B1%%7D\n%s\n%s\n{\"amount\n", uri, auth.Timestamp, auth.Nonce)
		if info.TruncatedSignMessage != wantTrunc {
			t.Errorf("truncated_sign_message = %q; want %q", info.TruncatedSignMessage, wantTrunc)
		}
	})

	t.Run("body too large", func(t *testing.T) {
		big := bytes.Repeat([]byte("a"), maxBody+1)
		resp, got := do(t, srv, m, "POST", uri, big)
		wantError(t, resp, got, http.StatusRequestEntityTooLarge, "INVALID_REQUEST")
	})
}

// certResponse is the decoded certificate endpoint answer.
type certResponse struct {
	Data []certificateItem `json:"data"`
}

func downloadCerts(t *testing.T, srv *Server, m Merchant, uri string) (*http.Response, []byte, certResponse) {
	t.Helper()
	resp, body := do(t, srv, m, "GET", uri, nil)
	var cr certResponse
	if resp.StatusCode == http.StatusOK && json.Valid(body) {
		if err := json.Unmarshal(body, &cr); err != nil {
			t.Fatal(err)
		}
	}
	return resp, body, cr
}

// decrypt opens one listed certificate with apiv3Key.
func decrypt(item certificateItem, apiv3Key string) (*x509.Certificate, error) {
	aead, err := wire.NewAEAD(apiv3Key)
	if err != nil {
		return nil, err
	}
	ec := item.EncryptCertificate
	pemBytes, err := wire.Open(aead, ec.Nonce, ec.AssociatedData, ec.Ciphertext)
	if err != nil {
		return nil, err
	}
	return wire.ParseCertificatePEM(pemBytes)
}

func TestCertificates(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	m := srv.Merchant()
	for i, uri := range []string{"/v3/certificates", "/v3/global/certificates", "/v3/certificates?algorithm_type=RSA"} {
		t.Run(uri, func(t *testing.T) {
			resp, body, cr := downloadCerts(t, srv, m, uri)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d; want 200 (body %s)", resp.StatusCode, body)
			}
			mustVerify(t, srv, m, resp, body, srv.SigningSerial(m.ID))
			if len(cr.Data) != 1 {
				t.Fatalf("got %d certificates; want 1", len(cr.Data))
			}
			item := cr.Data[0]
			ec := item.EncryptCertificate
			if ec.Algorithm != "AEAD_AES_256_GCM" || ec.AssociatedData != "certificate" || len(ec.Nonce) != 12 {
				t.Errorf("encrypt_certificate = %+v", ec)
			}
			c, err := decrypt(item, m.APIv3Key)
			if err != nil {
				t.Fatal(err)
			}
			serial := wire.CertSerial(c)
			if serial != item.SerialNo || len(serial) != 40 || serial != srv.SigningSerial(m.ID) {
				t.Errorf("serial = %s, serial_no = %s, signing %s; want equal, 40 hex", serial, item.SerialNo, srv.SigningSerial(m.ID))
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: srv.Roots(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Errorf("certificate does not chain to Roots(): %v", err)
			}
			if c.Subject.CommonName != "Tenpay.com sign" || c.Subject.Organization[0] != "Tenpay.com" || c.Subject.OrganizationalUnit[0] != "Tenpay.com CA Center" {
				t.Errorf("subject = %s", c.Subject)
			}
			if k := c.PublicKey.(*rsa.PublicKey); k.N.BitLen() != 2048 {
				t.Errorf("key is %d bits; want 2048", k.N.BitLen())
			}
			for _, tc := range []struct {
				got  string
				want time.Time
			}{{item.EffectiveTime, c.NotBefore}, {item.ExpireTime, c.NotAfter}} {
				tm, err := time.Parse(time.RFC3339, tc.got)
				if err != nil || !strings.HasSuffix(tc.got, "+08:00") || !tm.Equal(tc.want) {
					t.Errorf("time %q; want %s in +08:00", tc.got, tc.want)
				}
			}
			if d := time.Until(c.NotAfter); d < 4*365*24*time.Hour {
				t.Errorf("NotAfter is %s away; want about 5 years", d)
			}
			if _, err := decrypt(item, strings.Repeat("k", 32)); !errors.Is(err, wechatpay.ErrDecrypt) {
				t.Errorf("decrypt with another key: %v; want ErrDecrypt", err)
			}
			if got := srv.CertificateDownloads(); got != i+1 {
				t.Errorf("CertificateDownloads() = %d; want %d", got, i+1)
			}
			if got := srv.MerchantCertificateDownloads(m.ID); got != i+1 {
				t.Errorf("MerchantCertificateDownloads() = %d; want %d", got, i+1)
			}
		})
	}

	// A request that fails authentication counts for the endpoint only.
	req := newRequest(t, srv, m, "GET", "/v3/certificates", nil)
	req.Header.Del("Accept")
	resp, body := send(t, req)
	wantError(t, resp, body, 400, "INVALID_REQUEST")
	if got, want := srv.CertificateDownloads(), 4; got != want {
		t.Errorf("CertificateDownloads() = %d; want %d", got, want)
	}
	if got, want := srv.MerchantCertificateDownloads(m.ID), 3; got != want {
		t.Errorf("MerchantCertificateDownloads() = %d; want %d", got, want)
	}
	if srv.Requests() != 0 {
		t.Errorf("Requests() = %d; want 0", srv.Requests())
	}
}

func TestMerchants(t *testing.T) {
	srv := NewServer(WithPublicKey())
	defer srv.Close()
	handleTransaction(srv)
	m1, m2 := srv.Merchant(), srv.AddMerchant()
	if m1.ID == m2.ID || m1.CertificateSerial == m2.CertificateSerial || m1.APIv3Key == m2.APIv3Key || m1.PublicKeyID == m2.PublicKeyID {
		t.Fatalf("merchants share identifiers: %v %v", m1, m2)
	}
	for _, m := range []Merchant{m1, m2} {
		if len(m.ID) != 10 || len(m.CertificateSerial) != 40 || len(m.APIv3Key) != 32 ||
			!strings.HasPrefix(m.PublicKeyID, "PUB_KEY_ID_") || len(m.PublicKeyID) != 45 {
			t.Errorf("malformed merchant %v", m)
		}
		certs := srv.Certificates(m.ID)
		if len(certs) != 1 {
			t.Fatalf("merchant %s has %d certificates; want 1", m.ID, len(certs))
		}
		pk := certs[0].PublicKey.(*rsa.PublicKey)
		if m.PrivateKey.PublicKey.Equal(pk) || m.PublicKey.Equal(pk) || m.PrivateKey.PublicKey.Equal(m.PublicKey) {
			t.Errorf("merchant %s reuses a key for two purposes", m.ID)
		}
		resp, body := do(t, srv, m, "GET", "/v3/pay/transactions/id/7", nil)
		if !strings.Contains(string(body), `"mchid":"`+m.ID+`"`) {
			t.Errorf("MerchantIDFrom: body %s; want mchid %s", body, m.ID)
		}
		mustVerify(t, srv, m, resp, body, srv.SigningSerial(m.ID))

		_, _, cr := downloadCerts(t, srv, m, "/v3/certificates")
		if c, err := decrypt(cr.Data[0], m.APIv3Key); err != nil || !c.Equal(certs[0]) {
			t.Errorf("merchant %s downloads %v, %v; want its certificate", m.ID, c, err)
		}
		cfg := srv.MerchantConfig(m.ID)
		if cfg.MerchantID != m.ID || cfg.CertificateSerial != m.CertificateSerial || cfg.APIv3Key != m.APIv3Key ||
			cfg.PrivateKey != m.PrivateKey || cfg.BaseURL != srv.URL || cfg.PublicKeyID != "" || cfg.PublicKey != nil {
			t.Errorf("MerchantConfig(%s) = %v", m.ID, cfg)
		}
		if _, ok := cfg.Base.(*http.Transport); !ok {
			t.Errorf("Base is %T; want *http.Transport", cfg.Base)
		}
	}
	if srv.Config().MerchantID != m1.ID {
		t.Error("Config() is not the default merchant's")
	}
	if srv.MerchantCertificateDownloads(m1.ID) != 1 || srv.MerchantCertificateDownloads(m2.ID) != 1 || srv.CertificateDownloads() != 2 {
		t.Errorf("downloads %d, %d, total %d; want 1, 1, 2", srv.MerchantCertificateDownloads(m1.ID), srv.MerchantCertificateDownloads(m2.ID), srv.CertificateDownloads())
	}
}

func TestMerchantRedacts(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	m := srv.Merchant()
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		s := fmt.Sprintf(format, m)
		if strings.Contains(s, m.APIv3Key) || strings.Contains(s, m.PrivateKey.D.String()) || !strings.Contains(s, m.ID) {
			t.Errorf("Sprintf(%q, merchant) = %s; want the ID without secrets", format, s)
		}
	}
}

func TestRotation(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	handleTransaction(srv)
	m := srv.Merchant()
	old := srv.SigningSerial(m.ID)

	fresh := srv.AddCertificate(m.ID)
	if fresh == old || len(fresh) != 40 {
		t.Fatalf("AddCertificate = %q; want a new 40-hex serial", fresh)
	}
	certs := srv.Certificates(m.ID)
	if len(certs) != 2 || wire.CertSerial(certs[1]) != fresh {
		t.Fatalf("Certificates lists %d, want old and new", len(certs))
	}
	if certs[0].PublicKey.(*rsa.PublicKey).Equal(certs[1].PublicKey) {
		t.Error("the new certificate reuses the signing key")
	}
	if srv.SigningSerial(m.ID) != old {
		t.Errorf("SigningSerial = %s after AddCertificate; want still %s", srv.SigningSerial(m.ID), old)
	}
	resp, body, cr := downloadCerts(t, srv, m, "/v3/certificates")
	mustVerify(t, srv, m, resp, body, old)
	if len(cr.Data) != 2 {
		t.Fatalf("download lists %d certificates; want 2", len(cr.Data))
	}
	for _, item := range cr.Data {
		if c, err := decrypt(item, m.APIv3Key); err != nil || wire.CertSerial(c) != item.SerialNo {
			t.Errorf("item %s: %v", item.SerialNo, err)
		}
	}
	// A client may already name the new serial in Wechatpay-Serial.
	req := newRequest(t, srv, m, "GET", "/v3/pay/transactions/id/1", nil)
	req.Header.Set(wire.HeaderSerial, fresh)
	resp, body = send(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d with a listed Wechatpay-Serial", resp.StatusCode)
	}
	mustVerify(t, srv, m, resp, body, old)

	srv.UseCertificate(m.ID, fresh)
	if srv.SigningSerial(m.ID) != fresh {
		t.Errorf("SigningSerial = %s; want %s", srv.SigningSerial(m.ID), fresh)
	}
	resp, body = do(t, srv, m, "GET", "/v3/pay/transactions/id/1", nil)
	mustVerify(t, srv, m, resp, body, fresh)

	srv.ExpireCertificate(m.ID, old)
	certs = srv.Certificates(m.ID)
	if wire.CertSerial(certs[0]) != old || !certs[0].NotAfter.Before(time.Now()) {
		t.Errorf("expired certificate: serial %s, NotAfter %s; want %s in the past", wire.CertSerial(certs[0]), certs[0].NotAfter, old)
	}
	_, _, cr = downloadCerts(t, srv, m, "/v3/certificates")
	if exp, err := time.Parse(time.RFC3339, cr.Data[0].ExpireTime); err != nil || !exp.Before(time.Now()) {
		t.Errorf("expire_time = %s; want in the past", cr.Data[0].ExpireTime)
	}

	srv.RemoveCertificate(m.ID, old)
	if certs = srv.Certificates(m.ID); len(certs) != 1 || wire.CertSerial(certs[0]) != fresh {
		t.Errorf("after RemoveCertificate: %d certificates", len(certs))
	}

	// Removing the signing certificate unlists it but keeps signing.
	srv.RemoveCertificate(m.ID, fresh)
	resp, _ = do(t, srv, m, "GET", "/v3/pay/transactions/id/1", nil)
	if got := resp.Header.Get(wire.HeaderSerial); got != fresh {
		t.Errorf("Wechatpay-Serial = %s; want the removed %s", got, fresh)
	}

	defer func() {
		if recover() == nil {
			t.Error("UseCertificate of an unknown serial did not panic")
		}
	}()
	srv.UseCertificate(m.ID, old)
}

func TestCertFaults(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	m := srv.Merchant()
	signing := srv.SigningSerial(m.ID)
	tests := []struct {
		fault CertFault
		check func(t *testing.T, resp *http.Response, body []byte, cr certResponse)
	}{
		{CertOK, func(t *testing.T, resp *http.Response, body []byte, cr certResponse) {
			mustVerify(t, srv, m, resp, body, signing)
			if _, err := decrypt(cr.Data[0], m.APIv3Key); err != nil {
				t.Error(err)
			}
		}},
		{CertStatus500, func(t *testing.T, resp *http.Response, body []byte, cr certResponse) {
			wantError(t, resp, body, 500, "SYSTEM_ERROR")
			mustVerify(t, srv, m, resp, body, signing)
		}},
		{CertGarbage, func(t *testing.T, resp *http.Response, body []byte, cr certResponse) {
			if resp.StatusCode != 200 || json.Valid(body) {
				t.Errorf("got %d %s; want 200 with a body that is not JSON", resp.StatusCode, body)
			}
			mustVerify(t, srv, m, resp, body, signing)
		}},
		{CertWrongAPIv3Key, func(t *testing.T, resp *http.Response, body []byte, cr certResponse) {
			mustVerify(t, srv, m, resp, body, signing)
			if _, err := decrypt(cr.Data[0], m.APIv3Key); !errors.Is(err, wechatpay.ErrDecrypt) {
				t.Errorf("decrypt: %v; want ErrDecrypt", err)
			}
		}},
		{CertSerialMismatch, func(t *testing.T, resp *http.Response, body []byte, cr certResponse) {
			mustVerify(t, srv, m, resp, body, signing)
			c, err := decrypt(cr.Data[0], m.APIv3Key)
			if err != nil {
				t.Fatal(err)
			}
			if got := wire.CertSerial(c); got == cr.Data[0].SerialNo || got != signing || len(cr.Data[0].SerialNo) != 40 {
				t.Errorf("serial_no %s, certificate %s; want a different 40-hex serial_no", cr.Data[0].SerialNo, got)
			}
		}},
		{CertBadSignature, func(t *testing.T, resp *http.Response, body []byte, cr certResponse) {
			err := verify(resp, body, keyFor(t, srv, m, signing))
			if !errors.Is(err, wechatpay.ErrBadSignature) {
				t.Errorf("verify: %v; want ErrBadSignature", err)
			}
			if _, b64err := base64.StdEncoding.DecodeString(resp.Header.Get(wire.HeaderSignature)); b64err != nil {
				t.Errorf("signature is not Base64: %v", b64err)
			}
			if resp.Header.Get(wire.HeaderSerial) != signing {
				t.Error("wrong serial")
			}
			if _, err := decrypt(cr.Data[0], m.APIv3Key); err != nil {
				t.Error(err)
			}
		}},
		{CertUnsigned, func(t *testing.T, resp *http.Response, body []byte, cr certResponse) {
			for k := range resp.Header {
				if strings.HasPrefix(k, "Wechatpay-") {
					t.Errorf("header %s present", k)
				}
			}
			if len(cr.Data) != 1 {
				t.Error("certificates missing")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.fault), func(t *testing.T) {
			srv.SetCertFault(tc.fault)
			defer srv.SetCertFault(CertOK)
			resp, body, cr := downloadCerts(t, srv, m, "/v3/certificates")
			tc.check(t, resp, body, cr)
		})
	}

	t.Run("CertHang", func(t *testing.T) {
		srv.SetCertFault(CertHang)
		defer srv.SetCertFault(CertOK)
		// Long enough for the request to reach the server (and be
		// counted) on a loaded machine.
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		req := newRequest(t, srv, m, "GET", "/v3/certificates", nil).WithContext(ctx)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got %d; want no answer", resp.StatusCode)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v; want DeadlineExceeded", err)
		}
	})
	t.Run("SetCertDelay", func(t *testing.T) {
		srv.SetCertDelay(600 * time.Millisecond)
		defer srv.SetCertDelay(0)
		start := time.Now()
		resp, body, _ := downloadCerts(t, srv, m, "/v3/certificates")
		if d := time.Since(start); d < 600*time.Millisecond || resp.StatusCode != 200 {
			t.Errorf("answered %d after %s; want 200 after 600ms", resp.StatusCode, d)
		}
		mustVerify(t, srv, m, resp, body, signing)

		// Shorter than the delay, long enough to be counted when loaded.
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		req := newRequest(t, srv, m, "GET", "/v3/certificates", nil).WithContext(ctx)
		if resp, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
			if err == nil {
				resp.Body.Close()
			}
			t.Errorf("err = %v; want DeadlineExceeded", err)
		}
	})
	if got, want := srv.CertificateDownloads(), len(tests)+3; got != want {
		t.Errorf("CertificateDownloads() = %d; want %d", got, want)
	}
}

// Close must not wait forever for a request held by CertHang.
func TestCloseReleasesHang(t *testing.T) {
	srv := NewServer()
	m := srv.Merchant()
	srv.SetCertFault(CertHang)
	req := newRequest(t, srv, m, "GET", "/v3/certificates", nil)
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	for srv.CertificateDownloads() == 0 {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs")
	}
	<-done
}

func TestFaults(t *testing.T) {
	srv := NewServer(WithPublicKey())
	defer srv.Close()
	handleTransaction(srv)
	m := srv.Merchant()
	signing := srv.SigningSerial(m.ID)
	key := keyFor(t, srv, m, signing)
	tests := []struct {
		fault Fault
		check func(t *testing.T, resp *http.Response, body []byte)
	}{
		{FaultNone, func(t *testing.T, resp *http.Response, body []byte) {
			mustVerify(t, srv, m, resp, body, signing)
		}},
		{FaultTamperBody, func(t *testing.T, resp *http.Response, body []byte) {
			if !strings.Contains(string(body), `"transaction_id"`) && !strings.Contains(string(body), `"mchid"`) {
				t.Errorf("body %s is not the handler's", body)
			}
			if err := verify(resp, body, key); !errors.Is(err, wechatpay.ErrBadSignature) {
				t.Errorf("verify: %v; want ErrBadSignature", err)
			}
		}},
		{FaultTamperTimestamp, func(t *testing.T, resp *http.Response, body []byte) {
			if err := verify(resp, body, key); !errors.Is(err, wechatpay.ErrBadSignature) {
				t.Errorf("verify: %v; want ErrBadSignature", err)
			}
			ts, _ := strconv.ParseInt(resp.Header.Get(wire.HeaderTimestamp), 10, 64)
			if d := ts - time.Now().Unix(); d < -5 || d > 5 {
				t.Errorf("timestamp off by %ds", d)
			}
		}},
		{FaultWrongSerial, func(t *testing.T, resp *http.Response, body []byte) {
			serial := resp.Header.Get(wire.HeaderSerial)
			if serial == signing || serial != m.PublicKeyID {
				t.Errorf("Wechatpay-Serial = %s; want the merchant's other key %s", serial, m.PublicKeyID)
			}
			if err := verify(resp, body, key); err != nil {
				t.Errorf("signature with the real key: %v", err)
			}
		}},
		{FaultProbe, func(t *testing.T, resp *http.Response, body []byte) {
			sig := resp.Header.Get(wire.HeaderSignature)
			if !strings.HasPrefix(sig, "WECHATPAY/SIGNTEST/") || len(sig) < 40 {
				t.Errorf("signature = %q; want a probe", sig)
			}
			if verify(resp, body, key) == nil {
				t.Error("probe verifies")
			}
		}},
		{FaultInvalidBase64, func(t *testing.T, resp *http.Response, body []byte) {
			if sig := resp.Header.Get(wire.HeaderSignature); sig != "!!not-base64!!" {
				t.Errorf("signature = %q", sig)
			}
		}},
		{FaultNoHeaders, func(t *testing.T, resp *http.Response, body []byte) {
			for k := range resp.Header {
				if strings.HasPrefix(k, "Wechatpay-") {
					t.Errorf("header %s present", k)
				}
			}
		}},
		{FaultRandomSerial, func(t *testing.T, resp *http.Response, body []byte) {
			serial := resp.Header.Get(wire.HeaderSerial)
			if serial == signing || serial == m.PublicKeyID || len(serial) != 40 {
				t.Errorf("Wechatpay-Serial = %s; want a random serial", serial)
			}
			if err := verify(resp, body, key); err != nil {
				t.Errorf("signature with the real key: %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.fault), func(t *testing.T) {
			srv.SetFault(tc.fault)
			defer srv.SetFault(FaultNone)
			resp, body := do(t, srv, m, "GET", "/v3/pay/transactions/id/9", nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status = %d", resp.StatusCode)
			}
			tc.check(t, resp, body)
		})
	}

	t.Run("WrongSerial names another certificate", func(t *testing.T) {
		fresh := srv.AddCertificate(m.ID)
		srv.SetFault(FaultWrongSerial)
		defer srv.SetFault(FaultNone)
		resp, body := do(t, srv, m, "GET", "/v3/pay/transactions/id/9", nil)
		if got := resp.Header.Get(wire.HeaderSerial); got != fresh {
			t.Errorf("Wechatpay-Serial = %s; want %s", got, fresh)
		}
		if err := verify(resp, body, key); err != nil {
			t.Error(err)
		}
	})

	t.Run("faults spare the certificate endpoint and errors", func(t *testing.T) {
		srv.SetFault(FaultTamperBody)
		defer srv.SetFault(FaultNone)
		resp, body, _ := downloadCerts(t, srv, m, "/v3/certificates")
		mustVerify(t, srv, m, resp, body, signing)
		req := newRequest(t, srv, m, "GET", "/v3/pay/transactions/id/9", nil)
		req.Header.Del("Accept")
		resp, body = send(t, req)
		mustVerify(t, srv, m, resp, body, signing)
	})
}

func TestPublicKeyOnly(t *testing.T) {
	srv := NewServer(PublicKeyOnly())
	defer srv.Close()
	handleTransaction(srv)
	m := srv.Merchant()
	if m.PublicKey == nil || !strings.HasPrefix(m.PublicKeyID, "PUB_KEY_ID_") {
		t.Fatalf("merchant %v has no public key", m)
	}
	if got := srv.SigningSerial(m.ID); got != m.PublicKeyID {
		t.Errorf("SigningSerial = %s; want %s", got, m.PublicKeyID)
	}
	if n := len(srv.Certificates(m.ID)); n != 0 {
		t.Errorf("%d platform certificates; want none", n)
	}
	cfg := srv.Config()
	if cfg.PublicKeyID != m.PublicKeyID || cfg.PublicKey != m.PublicKey {
		t.Errorf("Config() = %v; want the public key", cfg)
	}

	for _, uri := range []string{"/v3/certificates", "/v3/global/certificates"} {
		resp, body := do(t, srv, m, "GET", uri, nil)
		e := wantError(t, resp, body, http.StatusNotFound, "RESOURCE_NOT_EXISTS")
		if !strings.Contains(e.Message, "微信支付公钥") {
			t.Errorf("message = %q", e.Message)
		}
		mustVerify(t, srv, m, resp, body, m.PublicKeyID)
	}
	if srv.CertificateDownloads() != 2 || srv.MerchantCertificateDownloads(m.ID) != 2 {
		t.Errorf("downloads %d/%d; want 2", srv.CertificateDownloads(), srv.MerchantCertificateDownloads(m.ID))
	}

	// Every response is signed with the public key, whatever the request names.
	for _, serial := range []string{"", m.PublicKeyID} {
		req := newRequest(t, srv, m, "GET", "/v3/pay/transactions/id/3", nil)
		if serial != "" {
			req.Header.Set(wire.HeaderSerial, serial)
		}
		resp, body := send(t, req)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		mustVerify(t, srv, m, resp, body, m.PublicKeyID)
	}
	req := newRequest(t, srv, m, "GET", "/v3/pay/transactions/id/3", nil)
	req.Header.Set(wire.HeaderSerial, newSerialHex())
	resp, body := send(t, req)
	wantError(t, resp, body, 400, "PARAM_ERROR")

	defer func() {
		if recover() == nil {
			t.Error("AddCertificate did not panic in PublicKeyOnly mode")
		}
	}()
	srv.AddCertificate(m.ID)
}

func TestWithPublicKeySelectsKey(t *testing.T) {
	srv := NewServer(WithPublicKey())
	defer srv.Close()
	handleTransaction(srv)
	m := srv.Merchant()
	for _, tc := range []struct{ reqSerial, want string }{
		{"", srv.SigningSerial(m.ID)},
		{srv.SigningSerial(m.ID), srv.SigningSerial(m.ID)},
		{m.PublicKeyID, m.PublicKeyID},
	} {
		for _, uri := range []string{"/v3/pay/transactions/id/3", "/v3/certificates"} {
			req := newRequest(t, srv, m, "GET", uri, nil)
			if tc.reqSerial != "" {
				req.Header.Set(wire.HeaderSerial, tc.reqSerial)
			}
			resp, body := send(t, req)
			if resp.StatusCode != 200 {
				t.Fatalf("%s: status %d: %s", uri, resp.StatusCode, body)
			}
			mustVerify(t, srv, m, resp, body, tc.want)
		}
	}
	if cfg := srv.Config(); cfg.PublicKeyID != "" || cfg.PublicKey != nil {
		t.Errorf("Config() = %v; want no public key without PublicKeyOnly", cfg)
	}
}

func TestClockOffset(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	handleTransaction(srv)
	m := srv.Merchant()
	for _, off := range []time.Duration{6 * time.Minute, -6 * time.Minute} {
		srv.SetClockOffset(off)
		resp, body := do(t, srv, m, "GET", "/v3/pay/transactions/id/3", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("offset %s: status %d: %s", off, resp.StatusCode, body)
		}
		mustVerify(t, srv, m, resp, body, srv.SigningSerial(m.ID))
		ts, _ := strconv.ParseInt(resp.Header.Get(wire.HeaderTimestamp), 10, 64)
		if d := time.Duration(ts-time.Now().Unix()) * time.Second; d < off-5*time.Second || d > off+5*time.Second {
			t.Errorf("offset %s: timestamp is %s from now", off, d)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	srv := NewServer(WithPublicKey())
	defer srv.Close()
	handleTransaction(srv)
	m := srv.Merchant()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		uri := "/v3/pay/transactions/id/" + strconv.Itoa(i)
		if i%4 == 0 {
			uri = "/v3/certificates"
		}
		req := newRequest(t, srv, m, "GET", uri, nil)
		wg.Go(func() {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- fmt.Errorf("%s: status %d", uri, resp.StatusCode)
				return
			}
			// The signing certificate may be switching: accept any listed one.
			serial := resp.Header.Get(wire.HeaderSerial)
			var key *rsa.PublicKey
			for _, c := range srv.Certificates(m.ID) {
				if wire.CertSerial(c) == serial {
					key = c.PublicKey.(*rsa.PublicKey)
				}
			}
			if err := verify(resp, body, key); err != nil {
				errs <- fmt.Errorf("%s: %v", uri, err)
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			srv.UseCertificate(m.ID, srv.AddCertificate(m.ID))
			srv.AddMerchant()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := srv.Requests(); got != 12 {
		t.Errorf("Requests() = %d; want 12", got)
	}
	if got := len(srv.Certificates(m.ID)); got != 5 {
		t.Errorf("%d certificates; want 5", got)
	}
}

func TestTakeKeyAvoids(t *testing.T) {
	var avoid []*rsa.PrivateKey
	for range poolSize + 2 {
		k := takeKey(avoid...)
		for _, a := range avoid {
			if a == k {
				t.Fatal("takeKey returned a key to avoid")
			}
		}
		avoid = append(avoid, k)
	}
}

func TestWithAddr(t *testing.T) {
	srv := NewServer(WithAddr("127.0.0.1:0"))
	defer srv.Close()
	handleTransaction(srv)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") {
		t.Errorf("URL = %s", srv.URL)
	}
	resp, body := do(t, srv, srv.Merchant(), "GET", "/v3/pay/transactions/id/1", nil)
	if resp.StatusCode != 200 {
		t.Errorf("status %d: %s", resp.StatusCode, body)
	}
}
