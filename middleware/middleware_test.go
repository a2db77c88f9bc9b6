package middleware_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// fixture is a sandbox, a Store that knows its default merchant, and an
// httptest server running the middleware in front of a recording handler.
type fixture struct {
	srv   *wechatpaytest.Server
	store *wechatpay.Store
	m     wechatpaytest.Merchant
	ts    *httptest.Server

	// answer, if set, is what the handler does after recording.
	answer func(w http.ResponseWriter, r *http.Request)

	mu     sync.Mutex
	got    []*middleware.Notification
	bodies [][]byte
	errs   []error
	calls  atomic.Int64
}

type fixtureOptions struct {
	srv    []wechatpaytest.Option
	config func(*middleware.Config)
	warm   bool // download the certificates before the test
	store  wechatpay.StoreOptions
}

func newFixture(t *testing.T, o fixtureOptions) *fixture {
	t.Helper()
	f := &fixture{}
	store, err := wechatpay.NewStore(o.store)
	if err != nil {
		t.Fatal(err)
	}
	f.store = store
	t.Cleanup(func() { store.Close() }) // after srv.Close, which ends hanging downloads
	f.srv = wechatpaytest.NewServer(o.srv...)
	t.Cleanup(f.srv.Close)
	f.m = f.srv.Merchant()
	cfg := f.srv.Config()
	cfg.PublicKeyID, cfg.PublicKey = f.m.PublicKeyID, f.m.PublicKey
	if err := store.Register(cfg); err != nil {
		t.Fatal(err)
	}
	if o.warm {
		if err := store.Refresh(context.Background(), f.m.ID); err != nil {
			t.Fatal(err)
		}
	}
	mc := middleware.Config{
		Keys:         store,
		MerchantID:   f.m.ID,
		APIv3Key:     f.m.APIv3Key,
		ErrorHandler: f.recordError,
	}
	if o.config != nil {
		o.config(&mc)
	}
	f.ts = httptest.NewServer(middleware.Notifications(mc)(http.HandlerFunc(f.handle)))
	t.Cleanup(f.ts.Close)
	return f
}

func (f *fixture) handle(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	n, ok := middleware.NotificationFrom(r.Context())
	body, err := io.ReadAll(r.Body)
	if !ok || err != nil {
		middleware.Fail(w, http.StatusInternalServerError, "test handler: no notification")
		return
	}
	f.mu.Lock()
	f.got = append(f.got, n)
	f.bodies = append(f.bodies, body)
	f.mu.Unlock()
	if f.answer != nil {
		f.answer(w, r)
	}
}

func (f *fixture) recordError(_ *http.Request, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, err)
}

func (f *fixture) lastError() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.errs) == 0 {
		return nil
	}
	return f.errs[len(f.errs)-1]
}

func (f *fixture) lastNotification(t *testing.T) (*middleware.Notification, []byte) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) == 0 {
		t.Fatal("the handler received no notification")
	}
	return f.got[len(f.got)-1], f.bodies[len(f.bodies)-1]
}

// notify sends a notification to the fixture's server and returns the
// status and body of the answer.
func (f *fixture) notify(t *testing.T, url, event string, resource any, opts ...wechatpaytest.NotifyOption) (int, []byte) {
	t.Helper()
	if url == "" {
		url = f.ts.URL
	}
	resp, err := f.srv.Notify(context.Background(), url, event, resource, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

var genericMessages = map[string]bool{
	"method not allowed":                   true,
	"unknown merchant":                     true,
	"request body too large":               true,
	"cannot read request body":             true,
	"request body timeout":                 true,
	"signature verification failed":        true,
	"verification temporarily unavailable": true,
	"malformed notification":               true,
	"cannot decrypt notification":          true,
	"internal error":                       true,
	"notification is being processed":      true,
}

// wantFailure checks that body is exactly WeChat Pay's failure JSON with
// one of the middleware's generic messages.
func wantFailure(t *testing.T, status int, body []byte, wantStatus int) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("status = %d; want %d (body %s)", status, wantStatus, body)
	}
	var f struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("failure body %q is not the failure JSON: %v", body, err)
	}
	if f.Code != "FAIL" || !genericMessages[f.Message] {
		t.Errorf("failure body = %s; want code FAIL and a generic message", body)
	}
}

func TestPaymentNotification(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	res := wechatpaytest.PaymentResource(f.m)
	res["attach"] = "order-batch-7"
	res["amount"] = map[string]any{"total": 987654, "payer_total": 987000, "currency": "CNY", "payer_currency": "CNY"}

	status, body := f.notify(t, "", "TRANSACTION.SUCCESS", res)
	if status != http.StatusNoContent || len(body) != 0 {
		t.Fatalf("answer = %d %q; want 204 and no body", status, body)
	}
	n, raw := f.lastNotification(t)
	if n.EventType != "TRANSACTION.SUCCESS" || n.ResourceType != "encrypt-resource" || n.Summary == "" ||
		n.Resource.OriginalType != "transaction" || n.Resource.Algorithm != "AEAD_AES_256_GCM" ||
		len(n.Resource.Nonce) != 12 || n.Resource.AssociatedData != "transaction" {
		t.Errorf("notification = %v %+v", n, n.Resource)
	}
	if n.MerchantID != f.m.ID || n.Serial != f.srv.SigningSerial(f.m.ID) {
		t.Errorf("MerchantID, Serial = %q, %q; want %q, %q", n.MerchantID, n.Serial, f.m.ID, f.srv.SigningSerial(f.m.ID))
	}
	if d := time.Since(n.CreateTime); d < -time.Minute || d > time.Minute {
		t.Errorf("CreateTime = %s; want about now", n.CreateTime)
	}
	if len(n.ID) != 36 {
		t.Errorf("ID = %q; want a UUID", n.ID)
	}

	tx, err := n.Transaction()
	if err != nil {
		t.Fatal(err)
	}
	if tx.MchID != f.m.ID || tx.OutTradeNo != res["out_trade_no"] || tx.TransactionID != res["transaction_id"] ||
		tx.TradeType != "JSAPI" || tx.TradeState != "SUCCESS" || tx.TradeStateDesc == "" || tx.BankType == "" ||
		tx.Attach != "order-batch-7" || tx.AppID == "" || tx.Payer.OpenID == "" {
		t.Errorf("Transaction() = %+v; want the sent resource %v", tx, res)
	}
	if tx.Amount != (middleware.Amount{Total: 987654, PayerTotal: 987000, Currency: "CNY", PayerCurrency: "CNY"}) {
		t.Errorf("Amount = %+v", tx.Amount)
	}
	if want, _ := time.Parse(time.RFC3339, res["success_time"].(string)); !tx.SuccessTime.Equal(want) {
		t.Errorf("SuccessTime = %s; want %s", tx.SuccessTime, want)
	}
	if _, err := n.Refund(); err == nil {
		t.Error("Refund() of a payment notification succeeded")
	}

	// The handler could read the verified body.
	var env struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &env); err != nil || env.ID != n.ID {
		t.Errorf("body read by the handler = %q (%v); want the notification %s", raw, err, n.ID)
	}

	// Printing the notification does not print the plaintext.
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("got", "n", n)
	for _, s := range []string{fmt.Sprint(n), fmt.Sprintf("%+v", n), fmt.Sprintf("%#v", n), fmt.Sprintf("%v", *n), logged.String()} {
		if strings.Contains(s, res["out_trade_no"].(string)) || strings.Contains(s, "987654") || strings.Contains(s, "order-batch-7") {
			t.Errorf("printed notification shows the plaintext: %s", s)
		}
		if !strings.Contains(s, n.ID) {
			t.Errorf("printed notification lacks its ID: %s", s)
		}
	}

	// Decode errors do not quote the plaintext either.
	var wrong struct {
		Amount struct {
			Total string `json:"total"`
		} `json:"amount"`
	}
	err = n.Decode(&wrong)
	if err == nil || strings.Contains(err.Error(), "987654") || !strings.Contains(err.Error(), "total") {
		t.Errorf("Decode into a wrong type = %v; want an error naming the field, not the value", err)
	}
}

func TestRefundNotification(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	res := wechatpaytest.RefundResource(f.m)
	status, body := f.notify(t, "", "REFUND.SUCCESS", res)
	if status != http.StatusNoContent {
		t.Fatalf("answer = %d %s; want 204", status, body)
	}
	n, _ := f.lastNotification(t)
	r, err := n.Refund()
	if err != nil {
		t.Fatal(err)
	}
	want := middleware.RefundAmount{Total: 100, Refund: 100, PayerTotal: 100, PayerRefund: 100}
	if r.MchID != f.m.ID || r.OutTradeNo != res["out_trade_no"] || r.TransactionID != res["transaction_id"] ||
		r.OutRefundNo != res["out_refund_no"] || r.RefundID != res["refund_id"] || r.RefundStatus != "SUCCESS" ||
		r.UserReceivedAccount != res["user_received_account"] || r.Amount != want || r.SuccessTime.IsZero() {
		t.Errorf("Refund() = %+v; want the sent resource %v", r, res)
	}
	if n.Resource.OriginalType != "refund" {
		t.Errorf("OriginalType = %q; want refund", n.Resource.OriginalType)
	}
	if _, err := n.Transaction(); err == nil {
		t.Error("Transaction() of a refund notification succeeded")
	}

	// A refund that did not succeed has no success_time.
	closed := wechatpaytest.RefundResource(f.m)
	delete(closed, "success_time")
	closed["refund_status"] = "CLOSED"
	if status, body := f.notify(t, "", "REFUND.CLOSED", closed); status != http.StatusNoContent {
		t.Fatalf("answer = %d %s; want 204", status, body)
	}
	n, _ = f.lastNotification(t)
	r, err = n.Refund()
	if err != nil || r.RefundStatus != "CLOSED" || !r.SuccessTime.IsZero() {
		t.Errorf("Refund() = %+v, %v; want CLOSED with zero SuccessTime", r, err)
	}
}

func TestRefused(t *testing.T) {
	f := newFixture(t, fixtureOptions{warm: true})
	otherKey := strings.Repeat("K", 32)
	tests := []struct {
		name   string
		event  string
		opts   []wechatpaytest.NotifyOption
		status int
		want   error
	}{
		{"tampered ciphertext", "", []wechatpaytest.NotifyOption{wechatpaytest.NotifyTamperCiphertext()}, 400, wechatpay.ErrDecrypt},
		{"tampered body", "", []wechatpaytest.NotifyOption{wechatpaytest.NotifyTamperBody()}, 401, wechatpay.ErrBadSignature},
		{"wrong APIv3 key", "", []wechatpaytest.NotifyOption{wechatpaytest.NotifyAPIv3Key(otherKey)}, 400, wechatpay.ErrDecrypt},
		{"probe", "", []wechatpaytest.NotifyOption{wechatpaytest.NotifyProbe()}, 401, wechatpay.ErrSignatureProbe},
		{"timestamp +6 min", "", []wechatpaytest.NotifyOption{wechatpaytest.NotifyTimestampOffset(6 * time.Minute)}, 401, wechatpay.ErrClockSkew},
		{"timestamp -6 min", "", []wechatpaytest.NotifyOption{wechatpaytest.NotifyTimestampOffset(-6 * time.Minute)}, 401, wechatpay.ErrClockSkew},
		{"unknown public key", "", []wechatpaytest.NotifyOption{wechatpaytest.NotifySerial("PUB_KEY_ID_0116571234562024052000123400000000")}, 401, wechatpay.ErrUnknownSerial},
		{"malformed JSON", "", []wechatpaytest.NotifyOption{wechatpaytest.NotifyBody([]byte(`{"id":"EV-1","resource":`))}, 400, middleware.ErrMalformed},
		{"no resource", "", []wechatpaytest.NotifyOption{wechatpaytest.NotifyBody([]byte(`{"id":"EV-2","event_type":"TRANSACTION.SUCCESS"}`))}, 400, middleware.ErrMalformed},
		{"other algorithm", "", []wechatpaytest.NotifyOption{wechatpaytest.NotifyBody([]byte(`{"id":"EV-3","resource":{"algorithm":"AEAD_SM4_GCM","ciphertext":"AAAA","nonce":"123456789012"}}`))}, 400, middleware.ErrMalformed},
		{"empty body", "", []wechatpaytest.NotifyOption{wechatpaytest.NotifyBody([]byte{})}, 400, middleware.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls, downloads := f.calls.Load(), f.srv.CertificateDownloads()
			status, body := f.notify(t, "", tc.event, nil, tc.opts...)
			wantFailure(t, status, body, tc.status)
			if n := f.calls.Load() - calls; n != 0 {
				t.Errorf("the handler ran %d times", n)
			}
			if d := f.srv.CertificateDownloads() - downloads; d != 0 {
				t.Errorf("%d certificate downloads; want none (the store is warm)", d)
			}
			err := f.lastError()
			var me *middleware.Error
			if !errors.As(err, &me) || me.Status != tc.status || me.MerchantID != f.m.ID || !errors.Is(err, tc.want) {
				t.Errorf("ErrorHandler got %v; want an *Error with status %d wrapping %v", err, tc.status, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), f.m.APIv3Key) {
				t.Errorf("error shows the APIv3 key: %v", err)
			}
			if bytes.Contains(body, []byte(f.m.ID)) || bytes.Contains(body, []byte(f.srv.SigningSerial(f.m.ID))) {
				t.Errorf("failure body %s tells internals", body)
			}
		})
	}
}

func TestUnknownSerialFetchesOnce(t *testing.T) {
	f := newFixture(t, fixtureOptions{}) // a cold store
	for i := range 3 {
		status, body := f.notify(t, "", "", nil, wechatpaytest.NotifySerial(fmt.Sprintf("%040X", 0xDEAD00+i)))
		wantFailure(t, status, body, http.StatusUnauthorized)
		if !errors.Is(f.lastError(), wechatpay.ErrUnknownSerial) {
			t.Errorf("error = %v; want ErrUnknownSerial", f.lastError())
		}
	}
	if n := f.srv.CertificateDownloads(); n != 1 {
		t.Errorf("%d certificate downloads for 3 unknown serials; want 1", n)
	}
	// The download cached the real certificate.
	if status, body := f.notify(t, "", "", nil); status != http.StatusNoContent {
		t.Fatalf("genuine notification answered %d %s", status, body)
	}
	if n := f.srv.CertificateDownloads(); n != 1 || f.calls.Load() != 1 {
		t.Errorf("downloads, handler calls = %d, %d; want 1, 1", n, f.calls.Load())
	}
}

func TestOversizedBody(t *testing.T) {
	f := newFixture(t, fixtureOptions{warm: true, config: func(c *middleware.Config) { c.MaxBodySize = 2048 }})
	res := wechatpaytest.PaymentResource(f.m)
	res["attach"] = strings.Repeat("x", 2000)
	status, body := f.notify(t, "", "", res)
	wantFailure(t, status, body, http.StatusRequestEntityTooLarge)
	if !errors.Is(f.lastError(), wechatpay.ErrBodyTooLarge) || f.calls.Load() != 0 {
		t.Errorf("error = %v, handler calls = %d; want ErrBodyTooLarge, 0", f.lastError(), f.calls.Load())
	}

	// Without Content-Length, the limit holds while reading.
	req, err := f.srv.NotificationRequest(context.Background(), f.ts.URL, "", res)
	if err != nil {
		t.Fatal(err)
	}
	req.Body = io.NopCloser(io.MultiReader(req.Body)) // hide the length
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	wantFailure(t, resp.StatusCode, body, http.StatusRequestEntityTooLarge)

	// A notification under the limit passes.
	if status, body := f.notify(t, "", "", nil); status != http.StatusNoContent {
		t.Errorf("small notification answered %d %s", status, body)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodHead} {
		req, _ := http.NewRequest(method, f.ts.URL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if method == http.MethodHead {
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("HEAD answered %d; want 405", resp.StatusCode)
			}
		} else {
			wantFailure(t, resp.StatusCode, body, http.StatusMethodNotAllowed)
		}
		if got := resp.Header.Get("Allow"); got != "POST" {
			t.Errorf("%s: Allow = %q; want POST", method, got)
		}
	}
	if !errors.Is(f.lastError(), middleware.ErrMethod) || f.calls.Load() != 0 {
		t.Errorf("error = %v, handler calls = %d; want ErrMethod, 0", f.lastError(), f.calls.Load())
	}
}

func TestConcurrentNewSerialFetchesOnce(t *testing.T) {
	// The store has never seen a certificate. The budget is far beyond
	// what 500 callbacks under -race on a loaded machine take: this test
	// is about one download, not about the budget.
	f := newFixture(t, fixtureOptions{config: func(c *middleware.Config) { c.Budget = time.Minute }})
	fresh := f.srv.AddCertificate(f.m.ID)
	f.srv.UseCertificate(f.m.ID, fresh)
	f.srv.SetCertDelay(100 * time.Millisecond) // keep the download open while callbacks pile up

	const n = 500
	reqs := make([]*http.Request, n)
	for i := range reqs {
		req, err := f.srv.NotificationRequest(context.Background(), f.ts.URL, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		reqs[i] = req
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	defer client.CloseIdleConnections()
	start := make(chan struct{})
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Go(func() {
			<-start
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusNoContent {
			t.Fatalf("callback %d answered %d; want 204 (last error %v)", i, s, f.lastError())
		}
	}
	if d := f.srv.CertificateDownloads(); d != 1 {
		t.Errorf("%d certificate downloads for %d concurrent callbacks; want 1", d, n)
	}
	if c := f.calls.Load(); c != n {
		t.Errorf("handler ran %d times; want %d", c, n)
	}
}

func TestSlowCertificateEndpoint(t *testing.T) {
	const budget = 300 * time.Millisecond
	f := newFixture(t, fixtureOptions{config: func(c *middleware.Config) { c.Budget = budget }})
	const delay = time.Minute // the download never ends within the test
	f.srv.SetCertDelay(delay)
	req, err := f.srv.NotificationRequest(context.Background(), f.ts.URL, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantFailure(t, resp.StatusCode, body, http.StatusServiceUnavailable)
	// Answered once the budget ran out, not when the download ended
	// (which no load can bring below a minute).
	if elapsed < budget || elapsed >= delay {
		t.Errorf("answered after %s; want after the budget %s, before the download's %s", elapsed, budget, delay)
	}
	if !errors.Is(f.lastError(), context.DeadlineExceeded) || f.calls.Load() != 0 {
		t.Errorf("error = %v, handler calls = %d; want DeadlineExceeded, 0", f.lastError(), f.calls.Load())
	}
}

func TestFailingCertificateEndpoint(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.srv.SetCertFault(wechatpaytest.CertStatus500)
	status, body := f.notify(t, "", "", nil)
	wantFailure(t, status, body, http.StatusServiceUnavailable)
	if !errors.Is(f.lastError(), wechatpay.ErrCertificateDownload) {
		t.Errorf("error = %v; want ErrCertificateDownload", f.lastError())
	}
}

func TestPublicKeyMigration(t *testing.T) {
	f := newFixture(t, fixtureOptions{srv: []wechatpaytest.Option{wechatpaytest.WithPublicKey()}})
	for i := range 10 {
		var opts []wechatpaytest.NotifyOption
		if i%3 == 0 {
			opts = append(opts, wechatpaytest.NotifyWithPublicKey())
		}
		if status, body := f.notify(t, "", "", nil, opts...); status != http.StatusNoContent {
			t.Fatalf("callback %d answered %d %s; want 204", i, status, body)
		}
		n, _ := f.lastNotification(t)
		want := f.srv.SigningSerial(f.m.ID)
		if i%3 == 0 {
			want = f.m.PublicKeyID
		}
		if n.Serial != want {
			t.Errorf("callback %d verified with %q; want %q", i, n.Serial, want)
		}
	}
	if d := f.srv.CertificateDownloads(); d != 1 {
		t.Errorf("%d certificate downloads; want 1", d)
	}
}

func TestPublicKeyOnly(t *testing.T) {
	f := newFixture(t, fixtureOptions{srv: []wechatpaytest.Option{wechatpaytest.PublicKeyOnly()}})
	if status, body := f.notify(t, "", "", nil); status != http.StatusNoContent {
		t.Fatalf("answered %d %s; want 204", status, body)
	}
	if n, _ := f.lastNotification(t); n.Serial != f.m.PublicKeyID {
		t.Errorf("Serial = %q; want %q", n.Serial, f.m.PublicKeyID)
	}
	if d := f.srv.CertificateDownloads(); d != 0 {
		t.Errorf("%d certificate downloads; want none in public-key mode", d)
	}
}

func TestMultiMerchant(t *testing.T) {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	m1, m2, unregistered := srv.Merchant(), srv.AddMerchant(), srv.AddMerchant()
	keys := map[string]string{}
	for _, m := range []wechatpaytest.Merchant{m1, m2} {
		if err := store.Register(srv.MerchantConfig(m.ID)); err != nil {
			t.Fatal(err)
		}
		keys[m.ID] = m.APIv3Key
	}
	keys[unregistered.ID] = unregistered.APIv3Key // known to the app, not to the store

	var mu sync.Mutex
	var got []*middleware.Notification
	var errs []error
	mw := middleware.Notifications(middleware.Config{
		Keys:           store,
		MerchantIDFunc: func(r *http.Request) (string, bool) { return r.PathValue("mchid"), true },
		APIv3Keys: func(id string) (string, bool) {
			k, ok := keys[id]
			return k, ok
		},
		ErrorHandler: func(_ *http.Request, err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() },
	})
	mux := http.NewServeMux()
	mux.Handle("POST /notify/{mchid}", mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := middleware.NotificationFrom(r.Context())
		mu.Lock()
		got = append(got, n)
		mu.Unlock()
	})))
	ts := httptest.NewServer(mux)
	defer ts.Close()

	send := func(path string, m wechatpaytest.Merchant) (int, []byte) {
		resp, err := srv.Notify(context.Background(), ts.URL+path, "", nil, wechatpaytest.NotifyMerchant(m.ID))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}
	for _, m := range []wechatpaytest.Merchant{m1, m2, m1} {
		if status, body := send("/notify/"+m.ID, m); status != http.StatusNoContent {
			t.Fatalf("merchant %s answered %d %s", m.ID, status, body)
		}
		mu.Lock()
		n := got[len(got)-1]
		mu.Unlock()
		tx, err := n.Transaction()
		if n.MerchantID != m.ID || err != nil || tx.MchID != m.ID {
			t.Errorf("notification for %s arrived as merchant %s (%v)", m.ID, n.MerchantID, err)
		}
	}

	status, body := send("/notify/1999999999", m1)
	wantFailure(t, status, body, http.StatusNotFound)
	status, body = send("/notify/"+unregistered.ID, unregistered)
	wantFailure(t, status, body, http.StatusNotFound)
	// m2's notification posted to m1's URL does not verify as m1's.
	status, body = send("/notify/"+m1.ID, m2)
	wantFailure(t, status, body, http.StatusUnauthorized)

	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Errorf("handler ran %d times; want 3", len(got))
	}
	if len(errs) != 3 || !errors.Is(errs[0], middleware.ErrUnknownMerchant) || !errors.Is(errs[1], wechatpay.ErrUnknownMerchant) || !errors.Is(errs[2], wechatpay.ErrUnknownSerial) {
		t.Errorf("errors = %v; want unknown merchant (app), unknown merchant (store), unknown serial", errs)
	}
}

func TestDuplicateGuard(t *testing.T) {
	f := newFixture(t, fixtureOptions{warm: true, config: func(c *middleware.Config) { c.Guard = middleware.NewMemoryGuard(16) }})
	var fail atomic.Bool
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			middleware.Fail(w, http.StatusInternalServerError, "database down")
		}
	}
	ids := func() []string {
		f.mu.Lock()
		defer f.mu.Unlock()
		var ids []string
		for _, n := range f.got {
			ids = append(ids, n.ID)
		}
		return ids
	}

	// Delivered twice: the second is acknowledged without the handler.
	for range 2 {
		if status, body := f.notify(t, "", "", nil, wechatpaytest.NotifyID("EV-2018022511223320873")); status != http.StatusNoContent || len(body) != 0 {
			t.Fatalf("answered %d %s; want 204", status, body)
		}
	}
	// Another notification runs.
	f.notify(t, "", "", nil, wechatpaytest.NotifyID("EV-other"))
	// A notification whose handler failed is released: the retry runs it.
	fail.Store(true)
	status, body := f.notify(t, "", "", nil, wechatpaytest.NotifyID("EV-retry"))
	if status != http.StatusInternalServerError || !bytes.Contains(body, []byte("database down")) {
		t.Errorf("failing handler answered %d %s; want its 500", status, body)
	}
	fail.Store(false)
	if status, _ := f.notify(t, "", "", nil, wechatpaytest.NotifyID("EV-retry")); status != http.StatusNoContent {
		t.Errorf("retry answered %d; want 204", status)
	}
	// The same ID for another merchant is another notification: keys are
	// scoped by merchant (checked on the guard directly, since the fixture
	// serves one merchant).
	if got, want := fmt.Sprint(ids()), "[EV-2018022511223320873 EV-other EV-retry EV-retry]"; got != want {
		t.Errorf("handler ran for %s; want %s", got, want)
	}
}

// TestGuardInProgress: a delivery that finds the notification claimed by
// a delivery still running is answered 503 with the failure JSON, never
// acknowledged; once the first finishes, later deliveries get 204 without
// the handler.
func TestGuardInProgress(t *testing.T) {
	f := newFixture(t, fixtureOptions{warm: true, config: func(c *middleware.Config) { c.Guard = middleware.NewMemoryGuard(16) }})
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(entered) })
		<-release
	}
	first := make(chan int)
	go func() {
		status, _ := f.notify(t, "", "", nil, wechatpaytest.NotifyID("EV-slow"))
		first <- status
	}()
	<-entered
	status, body := f.notify(t, "", "", nil, wechatpaytest.NotifyID("EV-slow"))
	wantFailure(t, status, body, http.StatusServiceUnavailable)
	if err := f.lastError(); !errors.Is(err, middleware.ErrInProgress) {
		t.Errorf("ErrorHandler got %v; want ErrInProgress", err)
	}
	close(release)
	if s := <-first; s != http.StatusNoContent {
		t.Errorf("first delivery answered %d; want 204", s)
	}
	if status, _ := f.notify(t, "", "", nil, wechatpaytest.NotifyID("EV-slow")); status != http.StatusNoContent {
		t.Errorf("delivery after the first finished answered %d; want 204", status)
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("handler ran %d times; want 1", n)
	}
}

// TestGuardConcurrentDeliveries: ten deliveries of one notification at
// once run the handler exactly once, and none of the others is
// acknowledged before it succeeded.
func TestGuardConcurrentDeliveries(t *testing.T) {
	f := newFixture(t, fixtureOptions{warm: true, config: func(c *middleware.Config) { c.Guard = middleware.NewMemoryGuard(16) }})
	var done atomic.Bool
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		done.Store(true)
	}
	req := func() *http.Request {
		r, err := f.srv.NotificationRequest(context.Background(), f.ts.URL, "", nil, wechatpaytest.NotifyID("EV-parallel"))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	reqs := make([]*http.Request, 10)
	for i := range reqs {
		reqs[i] = req()
	}
	var wg sync.WaitGroup
	var acked, busy atomic.Int32
	for _, r := range reqs {
		wg.Go(func() {
			resp, err := f.ts.Client().Do(r)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusNoContent:
				if !done.Load() {
					t.Error("a delivery was acknowledged before the handler finished")
				}
				acked.Add(1)
			case http.StatusServiceUnavailable:
				busy.Add(1)
			default:
				t.Errorf("answered %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if n := f.calls.Load(); n != 1 {
		t.Errorf("handler ran %d times; want exactly 1", n)
	}
	if acked.Load() < 1 || acked.Load()+busy.Load() != 10 {
		t.Errorf("%d acknowledged, %d answered 503; want at least 1 and 10 in all", acked.Load(), busy.Load())
	}
}

// TestGuardPanicReleases: a handler that panics releases its claim.
func TestGuardPanicReleases(t *testing.T) {
	guard := middleware.NewMemoryGuard(16)
	srv := wechatpaytest.NewServer()
	t.Cleanup(srv.Close)
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Register(srv.Config()); err != nil {
		t.Fatal(err)
	}
	var panicky atomic.Bool
	panicky.Store(true)
	calls := 0
	h := middleware.Notifications(middleware.Config{Keys: store, MerchantID: srv.Merchant().ID, APIv3Key: srv.Merchant().APIv3Key, Guard: guard})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls++
			if panicky.Load() {
				panic("handler bug")
			}
		}))
	serve := func() (status int, panicked bool) {
		r, err := srv.NotificationRequest(context.Background(), "http://merchant.example/notify", "", nil, wechatpaytest.NotifyID("EV-panic"))
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		defer func() {
			if recover() != nil {
				panicked = true
			}
		}()
		h.ServeHTTP(rec, r)
		return rec.Code, false
	}
	if _, panicked := serve(); !panicked {
		t.Fatal("the handler's panic did not propagate")
	}
	panicky.Store(false)
	if status, _ := serve(); status != http.StatusNoContent {
		t.Errorf("redelivery after a panic answered %d; want 204", status)
	}
	if calls != 2 {
		t.Errorf("handler ran %d times; want 2 (the panic released the claim)", calls)
	}
	if status, _ := serve(); status != http.StatusNoContent || calls != 2 {
		t.Errorf("third delivery answered %d with %d handler runs; want 204 and still 2", status, calls)
	}
}

type brokenGuard struct{}

func (brokenGuard) Claim(context.Context, string, string) (middleware.ClaimState, error) {
	return middleware.InProgress, errors.New("redis: down")
}
func (brokenGuard) Done(context.Context, string) error            { return errors.New("redis: down") }
func (brokenGuard) Release(context.Context, string, string) error { return errors.New("redis: down") }

// TestBrokenGuardDoesNotLoseNotifications: a guard that fails lets the
// notification through to the handler, whatever state it claims with its
// error, and the failure is reported.
func TestBrokenGuardDoesNotLoseNotifications(t *testing.T) {
	f := newFixture(t, fixtureOptions{warm: true, config: func(c *middleware.Config) { c.Guard = brokenGuard{} }})
	if status, body := f.notify(t, "", "", nil); status != http.StatusNoContent {
		t.Fatalf("answered %d %s; want 204", status, body)
	}
	if n := f.calls.Load(); n != 1 {
		t.Errorf("handler ran %d times; want 1", n)
	}
	var me *middleware.Error
	if err := f.lastError(); err == nil || !strings.Contains(err.Error(), "redis: down") || !errors.As(err, &me) || me.Status != 0 {
		t.Errorf("ErrorHandler got %v; want the guard's error with Status 0", err)
	}
}

func TestHandlerAnswers(t *testing.T) {
	f := newFixture(t, fixtureOptions{warm: true})
	var mode atomic.Int32
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		switch mode.Load() {
		case 1:
			w.WriteHeader(http.StatusOK)
		case 2:
			io.WriteString(w, `{"code":"SUCCESS"}`)
		case 3:
			middleware.Fail(w, http.StatusServiceUnavailable, "try later")
		}
	}
	tests := []struct {
		mode   int32
		status int
		body   string
	}{
		{0, 204, ""},
		{1, 200, ""},
		{2, 200, `{"code":"SUCCESS"}`},
		{3, 503, `{"code":"FAIL","message":"try later"}`},
	}
	for _, tc := range tests {
		mode.Store(tc.mode)
		status, body := f.notify(t, "", "", nil)
		if status != tc.status || string(body) != tc.body {
			t.Errorf("mode %d: answer = %d %q; want %d %q", tc.mode, status, body, tc.status, tc.body)
		}
	}
}

func TestConfigPanics(t *testing.T) {
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const secret = "not-32-bytes-secret-0123"
	key := strings.Repeat("k", 32)
	byPath := func(r *http.Request) (string, bool) { return r.PathValue("mchid"), true }
	keys := func(string) (string, bool) { return key, true }
	tests := []struct {
		name string
		cfg  middleware.Config
	}{
		{"no keys", middleware.Config{MerchantID: "1900000001", APIv3Key: key}},
		{"no merchant", middleware.Config{Keys: store, APIv3Key: key}},
		{"two merchants", middleware.Config{Keys: store, MerchantID: "1900000001", MerchantIDFunc: byPath, APIv3Key: key}},
		{"no APIv3 key", middleware.Config{Keys: store, MerchantID: "1900000001"}},
		{"short APIv3 key", middleware.Config{Keys: store, MerchantID: "1900000001", APIv3Key: secret}},
		{"two APIv3 keys", middleware.Config{Keys: store, MerchantID: "1900000001", APIv3Key: key, APIv3Keys: keys}},
		{"negative size", middleware.Config{Keys: store, MerchantID: "1900000001", APIv3Key: key, MaxBodySize: -1}},
		{"negative budget", middleware.Config{Keys: store, MerchantID: "1900000001", APIv3Key: key, Budget: -time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil {
					t.Fatal("Notifications did not panic")
				}
				if msg := fmt.Sprint(r); strings.Contains(msg, secret) || strings.Contains(msg, key) {
					t.Errorf("panic shows the APIv3 key: %s", msg)
				}
			}()
			middleware.Notifications(tc.cfg)
		})
	}

	// Valid configurations do not panic.
	middleware.Notifications(middleware.Config{Keys: store, MerchantID: "1900000001", APIv3Key: key})
	middleware.Notifications(middleware.Config{Keys: store, MerchantIDFunc: byPath, APIv3Keys: keys})
}

func TestBadAPIv3KeyFromFunc(t *testing.T) {
	f := newFixture(t, fixtureOptions{warm: true, config: func(c *middleware.Config) {
		c.APIv3Key = ""
		c.APIv3Keys = func(string) (string, bool) { return "short-secret", true }
	}})
	status, body := f.notify(t, "", "", nil)
	wantFailure(t, status, body, http.StatusInternalServerError)
	if err := f.lastError(); !errors.Is(err, wechatpay.ErrAPIv3Key) || strings.Contains(err.Error(), "short-secret") {
		t.Errorf("error = %v; want ErrAPIv3Key without the key", err)
	}
}

func TestConfigString(t *testing.T) {
	key := strings.Repeat("S", 32)
	c := middleware.Config{MerchantID: "1900000001", APIv3Key: key}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprint(&c)} {
		if strings.Contains(s, key) || !strings.Contains(s, "1900000001") {
			t.Errorf("printed Config = %s; want the merchant and not the key", s)
		}
	}
}

func TestNotificationFromOtherContext(t *testing.T) {
	if n, ok := middleware.NotificationFrom(context.Background()); ok || n != nil {
		t.Errorf("NotificationFrom(Background) = %v, %t; want nil, false", n, ok)
	}
}
