package wechatpaytest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// receivedNotification is a notification as a test receiver saw it.
type receivedNotification struct {
	header http.Header
	body   []byte
	env    notification
}

// notifyReceiver is an httptest server that records notifications and
// answers with status (204 if zero) and answer.
type notifyReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []receivedNotification
	status int
	answer string
}

func newNotifyReceiver(t *testing.T) *notifyReceiver {
	t.Helper()
	rc := &notifyReceiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var env notification
		json.Unmarshal(body, &env) // a bad body shows as an empty envelope
		rc.mu.Lock()
		rc.got = append(rc.got, receivedNotification{header: r.Header.Clone(), body: body, env: env})
		status, answer := rc.status, rc.answer
		rc.mu.Unlock()
		if status == 0 {
			status = http.StatusNoContent
		}
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *notifyReceiver) last(t *testing.T) receivedNotification {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) == 0 {
		t.Fatal("no notification receivedNotification")
	}
	return rc.got[len(rc.got)-1]
}

func verifyNotification(t *testing.T, srv *Server, m Merchant, n receivedNotification) error {
	t.Helper()
	h := n.header
	serial := h.Get(wire.HeaderSerial)
	msg := wire.ResponseMessage(h.Get(wire.HeaderTimestamp), h.Get(wire.HeaderNonce), n.body)
	return wire.Verify(keyFor(t, srv, m, serial), msg, h.Get(wire.HeaderSignature))
}

func decryptNotification(n receivedNotification, apiv3Key string) ([]byte, error) {
	aead, err := wire.NewAEAD(apiv3Key)
	if err != nil {
		return nil, err
	}
	r := n.env.Resource
	return wire.Open(aead, r.Nonce, r.AssociatedData, r.Ciphertext)
}

func sendNotify(t *testing.T, srv *Server, url, event string, resource any, opts ...NotifyOption) int {
	t.Helper()
	resp, err := srv.Notify(context.Background(), url, event, resource, opts...)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

var notificationIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNotify(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	m := srv.Merchant()
	rc := newNotifyReceiver(t)

	if got := sendNotify(t, srv, rc.URL, "", nil); got != http.StatusNoContent {
		t.Fatalf("Notify returned status %d; want the notifyReceiver's 204", got)
	}
	n := rc.last(t)
	if err := verifyNotification(t, srv, m, n); err != nil {
		t.Fatalf("signature: %v", err)
	}
	h := n.header
	if h.Get(wire.HeaderSerial) != srv.SigningSerial(m.ID) || h.Get(wire.HeaderSignatureType) != wire.SchemeRSA ||
		h.Get("Content-Type") != "application/json" {
		t.Errorf("headers = %v", h)
	}
	ts, _ := strconv.ParseInt(h.Get(wire.HeaderTimestamp), 10, 64)
	if d := time.Now().Unix() - ts; d < -5 || d > 5 {
		t.Errorf("Wechatpay-Timestamp is %ds off", d)
	}
	e := n.env
	ct, err := time.Parse(time.RFC3339, e.CreateTime)
	if !notificationIDRE.MatchString(e.ID) || err != nil || !strings.HasSuffix(e.CreateTime, "+08:00") || time.Since(ct) > time.Minute ||
		e.ResourceType != "encrypt-resource" || e.EventType != "TRANSACTION.SUCCESS" || e.Summary != "支付成功" ||
		e.Resource.OriginalType != "transaction" || e.Resource.Algorithm != "AEAD_AES_256_GCM" ||
		e.Resource.AssociatedData != "transaction" || len(e.Resource.Nonce) != 12 {
		t.Errorf("notification = %s", n.body)
	}
	pt, err := decryptNotification(n, m.APIv3Key)
	if err != nil {
		t.Fatal(err)
	}
	var tx map[string]any
	if err := json.Unmarshal(pt, &tx); err != nil || tx["mchid"] != m.ID || tx["trade_state"] != "SUCCESS" {
		t.Errorf("resource = %s (%v); want a sample payment of %s", pt, err, m.ID)
	}

	// A refund event gets a sample refund.
	sendNotify(t, srv, rc.URL, "REFUND.SUCCESS", nil)
	n = rc.last(t)
	pt, err = decryptNotification(n, m.APIv3Key)
	if err != nil || n.env.Resource.OriginalType != "refund" || n.env.Summary != "退款成功" || !strings.Contains(string(pt), `"refund_status":"SUCCESS"`) {
		t.Errorf("refund notification %s decrypts to %s (%v)", n.body, pt, err)
	}

	// A resource given as JSON is sent as it is.
	sendNotify(t, srv, rc.URL, "TRANSACTION.SUCCESS", json.RawMessage(`{"x":1}`))
	if pt, err := decryptNotification(rc.last(t), m.APIv3Key); err != nil || string(pt) != `{"x":1}` {
		t.Errorf("raw resource decrypts to %s (%v)", pt, err)
	}

	// The receiver's status comes back whatever it is.
	rc.mu.Lock()
	rc.status = http.StatusInternalServerError
	rc.mu.Unlock()
	if got := sendNotify(t, srv, rc.URL, "", nil); got != http.StatusInternalServerError {
		t.Errorf("status = %d; want the notifyReceiver's 500", got)
	}
}

func TestNotifyOptions(t *testing.T) {
	srv := NewServer(WithPublicKey())
	defer srv.Close()
	m := srv.Merchant()
	m2 := srv.AddMerchant()
	rc := newNotifyReceiver(t)
	wrongKey := strings.Repeat("W", 32)

	tests := []struct {
		name    string
		opts    []NotifyOption
		merch   Merchant
		sigOK   bool
		decOK   bool
		inspect func(t *testing.T, n receivedNotification)
	}{
		{"default", nil, m, true, true, nil},
		{"public key", []NotifyOption{NotifyWithPublicKey()}, m, true, true, func(t *testing.T, n receivedNotification) {
			if got := n.header.Get(wire.HeaderSerial); got != m.PublicKeyID {
				t.Errorf("serial = %q; want %q", got, m.PublicKeyID)
			}
		}},
		{"other merchant", []NotifyOption{NotifyMerchant(m2.ID)}, m2, true, true, func(t *testing.T, n receivedNotification) {
			if got := n.header.Get(wire.HeaderSerial); got != srv.SigningSerial(m2.ID) {
				t.Errorf("serial = %q; want %q", got, srv.SigningSerial(m2.ID))
			}
		}},
		{"probe", []NotifyOption{NotifyProbe()}, m, false, true, func(t *testing.T, n receivedNotification) {
			if !strings.HasPrefix(n.header.Get(wire.HeaderSignature), "WECHATPAY/SIGNTEST/") {
				t.Errorf("signature = %q; want a probe", n.header.Get(wire.HeaderSignature))
			}
		}},
		{"stale timestamp", []NotifyOption{NotifyTimestampOffset(-6 * time.Minute)}, m, true, true, func(t *testing.T, n receivedNotification) {
			ts, _ := strconv.ParseInt(n.header.Get(wire.HeaderTimestamp), 10, 64)
			if d := time.Now().Unix() - ts; d < 355 || d > 365 {
				t.Errorf("timestamp is %ds old; want 360", d)
			}
		}},
		{"tampered body", []NotifyOption{NotifyTamperBody()}, m, false, false, nil},
		{"tampered ciphertext", []NotifyOption{NotifyTamperCiphertext()}, m, true, false, nil},
		{"wrong APIv3 key", []NotifyOption{NotifyAPIv3Key(wrongKey)}, m, true, false, nil},
		{"fixed id", []NotifyOption{NotifyID("EV-2018022511223320873")}, m, true, true, func(t *testing.T, n receivedNotification) {
			if n.env.ID != "EV-2018022511223320873" {
				t.Errorf("id = %q", n.env.ID)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sendNotify(t, srv, rc.URL, "", nil, tc.opts...)
			n := rc.last(t)
			if err := verifyNotification(t, srv, tc.merch, n); (err == nil) != tc.sigOK {
				t.Errorf("signature check = %v; want ok %t", err, tc.sigOK)
			}
			if _, err := decryptNotification(n, tc.merch.APIv3Key); (err == nil) != tc.decOK {
				t.Errorf("decryption = %v; want ok %t", err, tc.decOK)
			}
			if tc.inspect != nil {
				tc.inspect(t, n)
			}
		})
	}

	// Another serial: the signature is by the usual key.
	sendNotify(t, srv, rc.URL, "", nil, NotifySerial("PUB_KEY_ID_0116571234562024052000123400000000"))
	n := rc.last(t)
	if got := n.header.Get(wire.HeaderSerial); got != "PUB_KEY_ID_0116571234562024052000123400000000" {
		t.Errorf("serial = %q", got)
	}
	msg := wire.ResponseMessage(n.header.Get(wire.HeaderTimestamp), n.header.Get(wire.HeaderNonce), n.body)
	if err := wire.Verify(keyFor(t, srv, m, srv.SigningSerial(m.ID)), msg, n.header.Get(wire.HeaderSignature)); err != nil {
		t.Errorf("NotifySerial signature does not verify with the signing key: %v", err)
	}

	// A raw body is signed as given.
	sendNotify(t, srv, rc.URL, "", nil, NotifyBody([]byte("not json")))
	if n := rc.last(t); string(n.body) != "not json" || verifyNotification(t, srv, m, n) != nil {
		t.Errorf("NotifyBody sent %q", n.body)
	}
}

func TestNotifyErrors(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	if _, err := srv.Notify(context.Background(), "http://127.0.0.1:1/", "", nil, NotifyWithPublicKey()); err == nil {
		t.Error("NotifyWithPublicKey without public keys succeeded")
	}
	if _, err := srv.Notify(context.Background(), "http://127.0.0.1:1/", "", nil, NotifyAPIv3Key("short")); err == nil || strings.Contains(err.Error(), "short") {
		t.Errorf("NotifyAPIv3Key(short) = %v; want an error without the key", err)
	}
	if _, err := srv.Notify(context.Background(), "http://127.0.0.1:1/", "", func() {}); err == nil {
		t.Error("a resource that does not marshal was sent")
	}
	var opErr interface{ Timeout() bool }
	if _, err := srv.Notify(context.Background(), "http://127.0.0.1:1/", "", nil); err == nil || !errors.As(err, &opErr) {
		t.Errorf("Notify to a closed port = %v; want a network error", err)
	}
}

func TestNotifyControlEndpoint(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	m := srv.Merchant()
	m2 := srv.AddMerchant()
	rc := newNotifyReceiver(t)

	call := func(t *testing.T, mm Merchant, method string, body string) (*http.Response, []byte) {
		t.Helper()
		resp, b := do(t, srv, mm, method, NotifyPath, []byte(body))
		mustVerify(t, srv, mm, resp, b, srv.SigningSerial(mm.ID))
		return resp, b
	}
	result := func(t *testing.T, resp *http.Response, body []byte) notifyResult {
		t.Helper()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d %s; want 200", resp.StatusCode, body)
		}
		var r notifyResult
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("result %s: %v", body, err)
		}
		return r
	}

	// Defaults: a payment for the calling merchant.
	resp, body := call(t, m2, http.MethodPost, `{"url":"`+rc.URL+`"}`)
	if r := result(t, resp, body); r.Status != http.StatusNoContent || r.Body != "" {
		t.Errorf("result = %+v; want 204 and no body", r)
	}
	n := rc.last(t)
	pt, err := decryptNotification(n, m2.APIv3Key)
	if err != nil || verifyNotification(t, srv, m2, n) != nil || n.env.EventType != "TRANSACTION.SUCCESS" || !strings.Contains(string(pt), m2.ID) {
		t.Errorf("notification for the calling merchant: %s decrypts to %s (%v)", n.body, pt, err)
	}

	// An event and a resource.
	rc.mu.Lock()
	rc.status, rc.answer = http.StatusInternalServerError, `{"code":"FAIL","message":"失败"}`+strings.Repeat("x", 2000)
	rc.mu.Unlock()
	resp, body = call(t, m, http.MethodPost, `{"url":"`+rc.URL+`","event_type":"REFUND.ABNORMAL","resource":{"refund_status":"ABNORMAL"}}`)
	r := result(t, resp, body)
	if r.Status != http.StatusInternalServerError || len(r.Body) != maxNotifyAnswer || !strings.HasPrefix(r.Body, `{"code":"FAIL","message":"失败"}`) {
		t.Errorf("result = %d, %d bytes %.40q; want 500 and the first KiB of the answer", r.Status, len(r.Body), r.Body)
	}
	n = rc.last(t)
	if pt, err := decryptNotification(n, m.APIv3Key); err != nil || string(pt) != `{"refund_status":"ABNORMAL"}` || n.env.EventType != "REFUND.ABNORMAL" {
		t.Errorf("notification %s decrypts to %s (%v)", n.body, pt, err)
	}

	// Failures.
	resp, body = call(t, m, http.MethodPost, `{"url":"http://127.0.0.1:1/notify"}`)
	wantError(t, resp, body, http.StatusBadGateway, "NOTIFY_FAILED")
	resp, body = call(t, m, http.MethodPost, `{"url":"ftp://example.com/"}`)
	wantError(t, resp, body, http.StatusBadRequest, "PARAM_ERROR")
	resp, body = call(t, m, http.MethodPost, `not json`)
	wantError(t, resp, body, http.StatusBadRequest, "PARAM_ERROR")
	resp, body = call(t, m, http.MethodPost, `{"url":"`+rc.URL+`","resource":[1]}`)
	wantError(t, resp, body, http.StatusBadRequest, "PARAM_ERROR")
	resp, body = call(t, m, http.MethodGet, ``)
	wantError(t, resp, body, http.StatusMethodNotAllowed, "INVALID_REQUEST")
	if resp.Header.Get("Allow") != http.MethodPost {
		t.Errorf("Allow = %q; want POST", resp.Header.Get("Allow"))
	}

	// Unauthenticated requests are refused before anything is sent.
	rc.mu.Lock()
	before := len(rc.got)
	rc.mu.Unlock()
	req := newRequest(t, srv, m, http.MethodPost, NotifyPath, []byte(`{"url":"`+rc.URL+`"}`))
	req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), `signature="`, `signature="AA`, 1))
	resp, body = send(t, req)
	wantError(t, resp, body, http.StatusUnauthorized, "SIGN_ERROR")
	rc.mu.Lock()
	after := len(rc.got)
	rc.mu.Unlock()
	if after != before {
		t.Error("an unauthenticated control request sent a notification")
	}
	if srv.Requests() != 0 {
		t.Errorf("Requests() = %d; the control endpoint is not a business route", srv.Requests())
	}
}
