package transfers_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/transfers"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

const (
	appID  = "wxd678efh567hg6787"
	openID = "o-MYE42l80oelYMDE34nYD456Xoy"
	// testName is test data, not a person: it must never show in errors or logs.
	testName = "测试用户甲"
)

// counter counts the requests a client sends, by method and path.
type counter struct {
	base http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[r.Method+" "+r.URL.Path]++
	c.mu.Unlock()
	return c.base.RoundTrip(r)
}

func (c *counter) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

// env is a simulator, a merchant's transfer client and its callback
// server, whose Router hands each finished bill to bills.
type env struct {
	srv   *wechatpaytest.Server
	c     *transfers.Client
	sent  *counter
	tr    *wechatpay.Transport
	bills chan *transfers.Bill
	auths chan *transfers.Authorization
	hook  string // the callback URL
}

func newEnv(t *testing.T, cfgOf func(*wechatpaytest.Server) wechatpay.Config, opts ...wechatpaytest.Option) *env {
	t.Helper()
	opts = append([]wechatpaytest.Option{wechatpaytest.WithCallbackSchedule(5*time.Second, 10*time.Millisecond, 10*time.Millisecond)}, opts...)
	srv := wechatpaytest.NewServer(opts...)
	t.Cleanup(srv.Close)
	cfg := srv.Config()
	if cfgOf != nil {
		cfg = cfgOf(srv)
	}
	e := &env{srv: srv, bills: make(chan *transfers.Bill, 16), auths: make(chan *transfers.Authorization, 16)}
	e.sent = &counter{base: cfg.Base, n: map[string]int{}}
	cfg.Base = e.sent
	tr, err := wechatpay.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.tr = tr
	e.c = &transfers.Client{HTTP: &http.Client{Transport: tr}, BaseURL: srv.URL, MerchantID: cfg.MerchantID, AppID: appID}

	var rt middleware.Router
	middleware.On(&rt, transfers.EventBillFinished, func(ctx context.Context, n *middleware.Notification, b *transfers.Bill) error {
		e.bills <- b
		return nil
	})
	middleware.On(&rt, transfers.EventAuthorizationConfirmed, func(ctx context.Context, n *middleware.Notification, a *transfers.Authorization) error {
		e.auths <- a
		return nil
	})
	hook := httptest.NewServer(middleware.Notifications(middleware.Config{Keys: tr.Verifier.Keys, MerchantID: cfg.MerchantID, APIv3Key: cfg.APIv3Key})(&rt))
	t.Cleanup(hook.Close)
	e.hook = hook.URL + "/wechatpay/notify"
	return e
}

func (e *env) bill(no string, fen int64, name string) transfers.BillRequest {
	return transfers.BillRequest{
		OutBillNo:       no,
		TransferSceneID: "1000",
		OpenID:          openID,
		UserName:        name,
		TransferAmount:  fen,
		TransferRemark:  "新会员开通有礼",
		NotifyURL:       e.hook,
		TransferSceneReportInfos: []transfers.SceneReportInfo{
			{InfoType: "活动名称", InfoContent: "新会员有礼"},
			{InfoType: "奖励说明", InfoContent: "注册会员抽奖一等奖"},
		},
	}
}

// finished waits for the MCHTRANSFER.BILL.FINISHED of bill no.
func (e *env) finished(t *testing.T, no string) *transfers.Bill {
	t.Helper()
	select {
	case b := <-e.bills:
		if b.OutBillNo != no {
			t.Fatalf("callback for bill %s; want %s", b.OutBillNo, no)
		}
		return b
	case <-time.After(30 * time.Second): // a hang guard, not a budget
		t.Fatalf("no MCHTRANSFER.BILL.FINISHED for %s", no)
		return nil
	}
}

// simBill returns the simulator's view of bill no, by a query: its
// user_name is what the simulator decrypted from the create request,
// encrypted again for the merchant and decrypted by the client.
func simBill(t *testing.T, e *env, no string) *transfers.Bill {
	t.Helper()
	b, err := e.c.QueryByOutBillNo(context.Background(), no)
	if err != nil {
		t.Fatalf("the simulator has no bill %s: %v", no, err)
	}
	return b
}

// confirm plays the user for bill no through the sandbox's control
// endpoint, signed by the merchant: result SUCCESS or FAIL. The error is
// the endpoint's answer.
func confirm(t *testing.T, e *env, no, result string) error {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"out_bill_no": no, "sub_mchid": e.c.SubMerchantID, "result": result})
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+wechatpaytest.ConfirmTransferPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.c.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return wechatpay.CheckResponse(resp)
}

// grant confirms on the sandbox's page what package pkg asks of the user,
// as a browser would.
func grant(t *testing.T, e *env, pkg string) {
	t.Helper()
	resp, err := http.PostForm(e.srv.URL+wechatpaytest.TransferConfirmPath, url.Values{"package": {pkg}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("confirmation page answered %d", resp.StatusCode)
	}
}

func wantAPIError(t *testing.T, what string, err error, status int, code string) *wechatpay.APIError {
	t.Helper()
	var apiErr *wechatpay.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != status || apiErr.Code != code || !apiErr.Verified {
		t.Fatalf("%s: %v; want a verified *APIError %d %s", what, err, status, code)
	}
	return apiErr
}

func wantUnknown(t *testing.T, what string, err error, no string) *wechatpay.OutcomeUnknownError {
	t.Helper()
	var unknown *wechatpay.OutcomeUnknownError
	if !errors.As(err, &unknown) {
		t.Fatalf("%s: %v (%T); want an *OutcomeUnknownError", what, err, err)
	}
	if unknown.NumberName != "out_bill_no" || unknown.Number != no {
		t.Errorf("%s: the error names %s %q; want out_bill_no %q", what, unknown.NumberName, unknown.Number, no)
	}
	if !strings.Contains(err.Error(), "out_bill_no") || !strings.Contains(err.Error(), no) {
		t.Errorf("%s: %q does not say to query by out_bill_no %s", what, err, no)
	}
	if wechatpay.Retryable(err) {
		t.Errorf("%s: Retryable = true for an unknown outcome", what)
	}
	return unknown
}

// TestTransferLifecycle walks a bill of a direct merchant through the
// simulator: create (with the user's name, over the threshold), both
// queries (the name decrypted for the merchant), the user confirms on
// the confirmation page's control path, the callback, SUCCESS, then the
// electronic receipt applied for, queried and downloaded.
func TestTransferLifecycle(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	const no = "plfk2020042013"

	b, err := e.c.Create(ctx, e.bill(no, 2000_00, testName))
	if err != nil {
		t.Fatal(err)
	}
	if b.State != transfers.StateWaitUserConfirm || b.PackageInfo == "" || b.TransferBillNo == "" || b.OutBillNo != no {
		t.Fatalf("Create = %v, package %q; want WAIT_USER_CONFIRM with package_info", b, b.PackageInfo)
	}
	if got := simBill(t, e, no).UserName; got != testName {
		t.Errorf("the simulator decrypted user_name %q; want the name sent", got)
	}
	if n := e.sent.count("POST /v3/fund-app/mch-transfer/transfer-bills"); n != 1 {
		t.Errorf("create sent %d times; want 1", n)
	}

	q, err := e.c.QueryByOutBillNo(ctx, no)
	if err != nil {
		t.Fatal(err)
	}
	if q.State != transfers.StateWaitUserConfirm || q.TransferAmount != 2000_00 || q.UserName != testName || q.MchID != e.c.MerchantID {
		t.Errorf("QueryByOutBillNo = %v (mch_id %s); want WAIT_USER_CONFIRM, 200000 fen, the name decrypted", q, q.MchID)
	}
	q2, err := e.c.QueryByTransferBillNo(ctx, b.TransferBillNo)
	if err != nil || q2.OutBillNo != no {
		t.Fatalf("QueryByTransferBillNo = %v, %v", q2, err)
	}

	if err := confirm(t, e, no, "SUCCESS"); err != nil {
		t.Fatal(err)
	}
	cb := e.finished(t, no)
	if cb.State != transfers.StateSuccess || cb.TransferBillNo != b.TransferBillNo || cb.TransferAmount != 2000_00 {
		t.Errorf("callback = %v; want SUCCESS of %s", cb, b.TransferBillNo)
	}
	q, err = e.c.QueryByOutBillNo(ctx, no)
	if err != nil || q.State != transfers.StateSuccess {
		t.Fatalf("QueryByOutBillNo after confirming = %v, %v; want SUCCESS", q, err)
	}
	if err := confirm(t, e, no, "SUCCESS"); err == nil {
		t.Error("a second confirmation was accepted")
	}

	r, err := e.c.ApplyReceipt(ctx, no)
	if err != nil || r.State != transfers.ReceiptGenerating {
		t.Fatalf("ApplyReceipt = %+v, %v; want GENERATING", r, err)
	}
	r, err = e.c.QueryReceipt(ctx, no)
	if err != nil || r.State != transfers.ReceiptFinished || r.DownloadURL == "" {
		t.Fatalf("QueryReceipt = %+v, %v; want FINISHED with a download_url", r, err)
	}
	file, err := e.c.DownloadReceipt(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(file, []byte("%PDF")) || !bytes.Contains(file, []byte(no)) {
		t.Errorf("receipt file %q; want the simulator's PDF for %s", file, no)
	}
	// The file is checked against the hash of the signed answer: a
	// substituted hash (as from a tampered answer) is refused.
	bad := *r
	sum := sha256.Sum256([]byte("another file"))
	bad.HashValue = hex.EncodeToString(sum[:])
	if _, err := e.c.DownloadReceipt(ctx, &bad); !errors.Is(err, wechatpay.ErrBillHash) {
		t.Errorf("DownloadReceipt with another hash = %v; want ErrBillHash", err)
	}
	bad = *r
	bad.HashType = "SM3"
	if _, err := e.c.DownloadReceipt(ctx, &bad); err == nil {
		t.Error("DownloadReceipt accepted an SM3 hash it cannot check")
	}
}

// A bill below the threshold needs no name; one at it does, and is
// refused before anything is sent, by an error naming the field and the
// threshold.
func TestUserNameThreshold(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	_, err := e.c.Create(ctx, e.bill("T2000yuan", transfers.UserNameThreshold, ""))
	if err == nil {
		t.Fatal("a 2,000-yuan bill without user_name was created")
	}
	for _, want := range []string{"user_name", "2,000 yuan", "200000 fen", "nothing was sent"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	var unknown *wechatpay.OutcomeUnknownError
	if errors.As(err, &unknown) {
		t.Error("a refusal before sending is an OutcomeUnknownError")
	}
	if n := e.sent.count("POST /v3/fund-app/mch-transfer/transfer-bills"); n != 0 {
		t.Errorf("%d requests sent; want none", n)
	}
	if b, err := e.c.Create(ctx, e.bill("T1999yuan", transfers.UserNameThreshold-1, "")); err != nil || b.State != transfers.StateWaitUserConfirm {
		t.Errorf("a bill of 1,999.99 yuan without a name: %v, %v; want it created", b, err)
	}
}

// user_name is encrypted with the key the request names, and the
// simulator decrypts it with that key: a merchant with platform
// certificates, one with only a WeChat Pay public key, and one migrating
// (both on the server, the client configured with the public key), with
// a client of the same merchant that still uses certificates beside it.
func TestUserNameKeyModes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []wechatpaytest.Option
		cfgOf func(*wechatpaytest.Server) wechatpay.Config
	}{
		{"certificates", nil, nil},
		{"public key only", []wechatpaytest.Option{wechatpaytest.PublicKeyOnly()}, nil},
		{"migration, client on the public key", []wechatpaytest.Option{wechatpaytest.WithPublicKey()}, withPublicKey},
		{"migration, client on certificates", []wechatpaytest.Option{wechatpaytest.WithPublicKey()}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfgOf, tc.opts...)
			ctx := context.Background()
			if _, err := e.c.Create(ctx, e.bill("KEYMODE01", 3000_00, testName)); err != nil {
				t.Fatal(err)
			}
			if got := simBill(t, e, "KEYMODE01").UserName; got != testName {
				t.Errorf("the simulator decrypted %q; want the name sent", got)
			}
			q, err := e.c.QueryByOutBillNo(ctx, "KEYMODE01")
			if err != nil || q.UserName != testName {
				t.Errorf("query: user_name %q, %v; want it decrypted with the merchant key", q.UserName, err)
			}
		})
	}
}

// withPublicKey is the configuration of a migrating merchant that knows
// its WeChat Pay public key.
func withPublicKey(srv *wechatpaytest.Server) wechatpay.Config {
	cfg := srv.Config()
	m := srv.Merchant()
	cfg.PublicKeyID, cfg.PublicKey = m.PublicKeyID, m.PublicKey
	return cfg
}

// rawCreate posts body to the create route through tr, naming serial in
// Wechatpay-Serial: what a client that skips the encryption step sends.
func rawCreate(t *testing.T, e *env, serial string, body map[string]any) error {
	t.Helper()
	b, _ := json.Marshal(body)
	ctx := wechatpay.WithSerial(context.Background(), serial)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+"/v3/fund-app/mch-transfer/transfer-bills", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return wechatpay.CheckResponse(resp)
}

// The simulator refuses a name sent in clear, and one encrypted with
// another key than the one Wechatpay-Serial names, with WeChat Pay's
// PARAM_ERROR; no bill is made.
func TestUserNameRefusedInClearOrWrongKey(t *testing.T) {
	e := newEnv(t, withPublicKey, wechatpaytest.WithPublicKey())
	m := e.srv.Merchant()
	body := map[string]any{"appid": appID, "out_bill_no": "CLEAR01", "transfer_scene_id": "1000", "openid": openID,
		"user_name": testName, "transfer_amount": 2000_00, "transfer_remark": "新会员开通有礼"}
	err := rawCreate(t, e, m.PublicKeyID, body)
	apiErr := wantAPIError(t, "user_name in clear", err, http.StatusBadRequest, "PARAM_ERROR")
	if !strings.Contains(apiErr.Message, "user_name") {
		t.Errorf("message %q does not name user_name", apiErr.Message)
	}
	if strings.Contains(err.Error(), testName) {
		t.Errorf("the error quotes the name: %v", err)
	}

	// Encrypted with the public key, but naming a platform certificate.
	ct, err := wire.EncryptOAEP(m.PublicKey, []byte(testName))
	if err != nil {
		t.Fatal(err)
	}
	body["user_name"], body["out_bill_no"] = ct, "WRONGKEY01"
	err = rawCreate(t, e, e.certSerial(t), body)
	wantAPIError(t, "user_name encrypted with another key", err, http.StatusBadRequest, "PARAM_ERROR")

	// A serial the merchant does not have.
	body["out_bill_no"] = "NOSERIAL01"
	err = rawCreate(t, e, "5157F09EFDC096DE15EBE81A47057A7232F1B8E1", body)
	apiErr = wantAPIError(t, "an unknown Wechatpay-Serial", err, http.StatusBadRequest, "PARAM_ERROR")
	if !strings.Contains(apiErr.Message, "Wechatpay-Serial") {
		t.Errorf("message %q does not name Wechatpay-Serial", apiErr.Message)
	}
	for _, no := range []string{"CLEAR01", "WRONGKEY01", "NOSERIAL01"} {
		_, err := e.c.QueryByOutBillNo(context.Background(), no)
		wantAPIError(t, "the refused bill "+no, err, http.StatusNotFound, "NOT_FOUND")
	}
}

// certSerial returns the serial of the merchant's platform certificate,
// from the Transport's store.
func (e *env) certSerial(t *testing.T) string {
	t.Helper()
	// Any signed answer names it when the request does not ask for the
	// public key.
	resp, err := e.c.HTTP.Get(e.srv.URL + "/v3/certificates")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Data []struct {
			SerialNo string `json:"serial_no"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || len(v.Data) == 0 {
		t.Fatalf("certificates: %v", err)
	}
	return v.Data[0].SerialNo
}

// The same out_bill_no with the same parameters is the same bill; with
// other parameters it is WeChat Pay's INVALID_REQUEST, which Create
// reports as an unknown outcome to query by out_bill_no.
func TestDuplicateOutBillNo(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	req := e.bill("DUP001", 500, "")
	b1, err := e.c.Create(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := e.c.Create(ctx, req)
	if err != nil || b2.TransferBillNo != b1.TransferBillNo {
		t.Fatalf("the same request again: %v, %v; want bill %s", b2, err, b1.TransferBillNo)
	}
	req.TransferAmount = 600
	_, err = e.c.Create(ctx, req)
	wantUnknown(t, "other parameters", err, "DUP001")
	apiErr := wantAPIError(t, "other parameters", err, http.StatusBadRequest, "INVALID_REQUEST")
	if !strings.Contains(apiErr.Message, "单号已存在") {
		t.Errorf("message %q; want WeChat Pay's 单号已存在但信息不一致", apiErr.Message)
	}
	if q := simBill(t, e, "DUP001"); q.TransferAmount != 500 || q.TransferBillNo != b1.TransferBillNo {
		t.Errorf("the bill is now %v; want the first one, 500 fen", q)
	}
}

// Cancel before the user confirms: CANCELING in the answer, CANCELLED in
// the query and the callback; cancelling again says CANCELLED; the user
// can no longer confirm.
func TestCancel(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.c.Create(ctx, e.bill("CANCEL01", 300, "")); err != nil {
		t.Fatal(err)
	}
	b, err := e.c.Cancel(ctx, "CANCEL01")
	if err != nil || b.State != transfers.StateCanceling {
		t.Fatalf("Cancel = %v, %v; want CANCELING", b, err)
	}
	if cb := e.finished(t, "CANCEL01"); cb.State != transfers.StateCancelled {
		t.Errorf("callback state %s; want CANCELLED", cb.State)
	}
	if q, err := e.c.QueryByOutBillNo(ctx, "CANCEL01"); err != nil || q.State != transfers.StateCancelled {
		t.Errorf("query after cancel = %v, %v; want CANCELLED", q, err)
	}
	if b, err := e.c.Cancel(ctx, "CANCEL01"); err != nil || b.State != transfers.StateCancelled {
		t.Errorf("second Cancel = %v, %v; want CANCELLED", b, err)
	}
	if err := confirm(t, e, "CANCEL01", "SUCCESS"); err == nil {
		t.Error("a cancelled bill was confirmed")
	}
	_, err = e.c.Cancel(ctx, "NOSUCHBILL")
	wantUnknown(t, "cancel of an unknown bill", err, "NOSUCHBILL")
	wantAPIError(t, "cancel of an unknown bill", err, http.StatusNotFound, "NOT_FOUND")
}

// A confirmed payout that fails says why, in the callback and the query.
// (Expiry after 24 hours is tested inside wechatpaytest, on the part's
// clock.)
func TestConfirmedPayoutFails(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.c.Create(ctx, e.bill("FAIL01", 300, "")); err != nil {
		t.Fatal(err)
	}
	if err := confirm(t, e, "FAIL01", "FAIL"); err != nil {
		t.Fatal(err)
	}
	if cb := e.finished(t, "FAIL01"); cb.State != transfers.StateFail || cb.FailReason == "" {
		t.Errorf("callback = %v; want FAIL with a reason", cb)
	}
	if q, err := e.c.QueryByOutBillNo(ctx, "FAIL01"); err != nil || q.State != transfers.StateFail || q.FailReason == "" {
		t.Errorf("query = %v, %v; want FAIL with a reason", q, err)
	}
}

// A service provider's bill: the /partner/ paths and sub_mchid, create,
// both queries, cancel.
func TestPartner(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.c.SubMerchantID = "1900001109"
	b, err := e.c.Create(ctx, e.bill("PARTNER01", 2500_00, testName))
	if err != nil || b.State != transfers.StateWaitUserConfirm {
		t.Fatalf("Create = %v, %v", b, err)
	}
	sb := simBill(t, e, "PARTNER01")
	if sb.SubMchID != "1900001109" || sb.MchID != e.c.MerchantID || sb.UserName != testName {
		t.Errorf("the simulator holds %+v; want sub_mchid 1900001109 of %s with the name", sb, e.c.MerchantID)
	}
	if n := e.sent.count("POST /v3/fund-app/mch-transfer/partner/transfer-bills"); n != 1 {
		t.Errorf("partner create sent %d times; want 1", n)
	}
	q, err := e.c.QueryByOutBillNo(ctx, "PARTNER01")
	if err != nil || q.SubMchID != "1900001109" || q.UserName != testName {
		t.Fatalf("QueryByOutBillNo = %v (sub_mchid %s), %v", q, q.SubMchID, err)
	}
	if q, err := e.c.QueryByTransferBillNo(ctx, b.TransferBillNo); err != nil || q.OutBillNo != "PARTNER01" {
		t.Fatalf("QueryByTransferBillNo = %v, %v", q, err)
	}
	// Another sub-merchant of the same provider does not see it.
	other := *e.c
	other.SubMerchantID = "1900009999"
	_, err = other.QueryByOutBillNo(ctx, "PARTNER01")
	wantAPIError(t, "another sub-merchant's query", err, http.StatusNotFound, "NOT_FOUND")
	if b, err := e.c.Cancel(ctx, "PARTNER01"); err != nil || b.State != transfers.StateCanceling {
		t.Fatalf("Cancel = %v, %v", b, err)
	}
	if q, _ := e.c.QueryByOutBillNo(ctx, "PARTNER01"); q == nil || q.State != transfers.StateCancelled {
		t.Errorf("after cancel: %v; want CANCELLED", q)
	}
}

// The authorisation calls against the simulator: request (package_info
// to confirm), query, close.
func TestAuthorizationCalls(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	a, err := e.c.RequestAuthorization(ctx, transfers.AuthorizationRequest{
		OutAuthorizationNo: "AUTH001", OpenID: openID, TransferSceneID: "1000",
		UserDisplayName: "wx_123456", AuthorizationNotifyURL: e.hook,
	})
	if err != nil || a.State != transfers.StateWaitUserConfirm || a.PackageInfo == "" || a.AppID != appID {
		t.Fatalf("RequestAuthorization = %+v, %v", a, err)
	}
	if q, err := e.c.QueryAuthorization(ctx, "AUTH001"); err != nil || q.OutAuthorizationNo != "AUTH001" || q.OpenID != openID {
		t.Fatalf("QueryAuthorization = %+v, %v", q, err)
	}
	if c, err := e.c.CloseAuthorization(ctx, "AUTH001"); err != nil || c.State != "CLOSED" {
		t.Fatalf("CloseAuthorization = %+v, %v", c, err)
	}
	_, err = e.c.QueryAuthorization(ctx, "NOAUTH01")
	wantAPIError(t, "unknown authorisation", err, http.StatusNotFound, "NOT_FOUND")
}

// Nothing printed or logged shows the user's name.
func TestNameNeverPrinted(t *testing.T) {
	req := transfers.BillRequest{OutBillNo: "SECRET01", UserName: testName, TransferAmount: 2000_00}
	b := transfers.Bill{OutBillNo: "SECRET01", UserName: testName, State: "SUCCESS"}
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	log.Info("bill", "req", req, "bill", b)
	for _, s := range []string{fmt.Sprint(req), fmt.Sprintf("%+v", req), fmt.Sprintf("%#v", req),
		fmt.Sprint(b), fmt.Sprintf("%+v", b), fmt.Sprintf("%#v", b), fmt.Sprint(&b), logged.String()} {
		if strings.Contains(s, testName) {
			t.Errorf("printed the name: %s", s)
		}
		if !strings.Contains(s, "SECRET01") {
			t.Errorf("printed nothing useful: %s", s)
		}
	}
}

// The 免确认收款授权 transfers against the simulator: paying a user who
// has not granted it is NO_AUTH (an unknown outcome, like every error
// answer of a money-moving call); once granted (the
// MCHTRANSFER.AUTHORIZATION.CONFIRMED callback arrives) the user is paid
// at once; a pre-transfer asks for the authorisation with a bill, and the
// user's confirmation grants both.
func TestAuthorizedTransfers(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	pay := e.bill("AUTHPAY01", 2200_00, testName)
	_, err := e.c.TransferWithAuthorization(ctx, pay)
	wantUnknown(t, "a user without authorisation", err, "AUTHPAY01")
	wantAPIError(t, "a user without authorisation", err, http.StatusForbidden, "NO_AUTH")

	asked, err := e.c.RequestAuthorization(ctx, transfers.AuthorizationRequest{OutAuthorizationNo: "AUTH01", OpenID: openID,
		TransferSceneID: "1000", UserDisplayName: "wx_123456", AuthorizationNotifyURL: e.hook})
	if err != nil {
		t.Fatal(err)
	}
	grant(t, e, asked.PackageInfo) // the user, on the page wx.requestMerchantTransfer opens

	if a := <-e.auths; a.OutAuthorizationNo != "AUTH01" || a.OpenID != openID {
		t.Errorf("authorisation callback %+v", a)
	}
	pay.OutBillNo = "AUTHPAY02"
	b, err := e.c.TransferWithAuthorization(ctx, pay)
	if err != nil || b.State != transfers.StateSuccess {
		t.Fatalf("TransferWithAuthorization = %v, %v; want SUCCESS at once", b, err)
	}
	if cb := e.finished(t, "AUTHPAY02"); cb.State != transfers.StateSuccess {
		t.Errorf("callback %v", cb)
	}
	if got := simBill(t, e, "AUTHPAY02").UserName; got != testName {
		t.Errorf("the simulator decrypted %q", got)
	}
	if n := e.sent.count("POST /v3/fund-app/mch-transfer/transfer-bills/transfer"); n != 2 {
		t.Errorf("sent %d; want 2", n)
	}
	if _, err := e.c.TransferWithAuthorization(ctx, e.bill("AUTHPAY03", 2000_00, "")); err == nil || !strings.Contains(err.Error(), "user_name") {
		t.Errorf("a 2,000-yuan authorised transfer without a name: %v; want refused before sending", err)
	}

	pre := transfers.PreTransferRequest{BillRequest: e.bill("PRE01", 500, ""), AuthorizationInfo: &transfers.PreAuthorization{
		OutAuthorizationNo: "AUTH02", UserDisplayName: "wx_654321", AuthorizationNotifyURL: e.hook}}
	pre.OpenID = "o-AnotherUser0000000000000000"
	b, err = e.c.PreTransferWithAuthorization(ctx, pre)
	if err != nil || b.State != transfers.StateWaitUserConfirm || b.PackageInfo == "" {
		t.Fatalf("PreTransferWithAuthorization = %v, %v", b, err)
	}
	if err := confirm(t, e, "PRE01", "SUCCESS"); err != nil {
		t.Fatal(err)
	}
	if cb := e.finished(t, "PRE01"); cb.State != transfers.StateSuccess {
		t.Errorf("callback %v", cb)
	}
	if a := <-e.auths; a.OutAuthorizationNo != "AUTH02" {
		t.Errorf("authorisation callback %+v; want AUTH02", a)
	}
	if a, err := e.c.QueryAuthorization(ctx, "AUTH02"); err != nil || a.OpenID != pre.OpenID || a.State == transfers.StateWaitUserConfirm {
		t.Errorf("QueryAuthorization = %+v, %v; want granted for the pre-transfer's user", a, err)
	}
}

// DownloadReceipt reads at most MaxReceiptSize bytes of the unsigned
// file, and sends nothing to a host that is not WeChat Pay's.
func TestDownloadReceiptBounds(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.srv.Handle("GET /v3/transferdownload/huge", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte{'x'}, transfers.MaxReceiptSize+1))
	}))
	sum := sha256.Sum256(nil)
	r := &transfers.Receipt{State: transfers.ReceiptFinished, HashType: "SHA256", HashValue: hex.EncodeToString(sum[:]),
		DownloadURL: e.srv.URL + "/v3/transferdownload/huge"}
	if _, err := e.c.DownloadReceipt(ctx, r); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("an oversized file: %v; want it refused for its size", err)
	}
	r.DownloadURL = "http://receipts.example/v3/transferdownload/elecvoucherfile?token=x"
	if _, err := e.c.DownloadReceipt(ctx, r); !errors.Is(err, wechatpay.ErrHostNotAllowed) {
		t.Errorf("a download_url on another host: %v; want ErrHostNotAllowed", err)
	}
	if n := e.sent.count("GET /v3/transferdownload/elecvoucherfile"); n != 0 {
		t.Errorf("%d requests to the other host; want none", n)
	}
}

// The direct-merchant-only calls refuse, before sending, a Client acting
// for a sub-merchant.
func TestDirectOnlyCalls(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	e.c.SubMerchantID = "1900001109"
	calls := map[string]func() error{
		"RequestAuthorization": func() error {
			_, err := e.c.RequestAuthorization(ctx, transfers.AuthorizationRequest{OutAuthorizationNo: "A1"})
			return err
		},
		"QueryAuthorization": func() error { _, err := e.c.QueryAuthorization(ctx, "A1"); return err },
		"CloseAuthorization": func() error { _, err := e.c.CloseAuthorization(ctx, "A1"); return err },
		"TransferWithAuthorization": func() error {
			_, err := e.c.TransferWithAuthorization(ctx, e.bill("D1", 100, ""))
			return err
		},
		"PreTransferWithAuthorization": func() error {
			_, err := e.c.PreTransferWithAuthorization(ctx, transfers.PreTransferRequest{BillRequest: e.bill("D2", 100, "")})
			return err
		},
		"ApplyReceipt": func() error { _, err := e.c.ApplyReceipt(ctx, "D1"); return err },
		"QueryReceipt": func() error { _, err := e.c.QueryReceipt(ctx, "D1"); return err },
	}
	for name, call := range calls {
		if err := call(); err == nil || !strings.Contains(err.Error(), name+" is a direct merchant's call") {
			t.Errorf("%s: %v; want refused as direct-only", name, err)
		}
	}
	for k, n := range e.sent.n {
		t.Errorf("sent %s %d times; want nothing", k, n)
	}
}

// When no key to encrypt the name with can be had (the certificate
// download fails), the bill is not sent, and the error says so rather
// than claiming an unknown outcome.
func TestNoEncryptionKeyNothingSent(t *testing.T) {
	e := newEnv(t, nil)
	e.srv.SetCertFault(wechatpaytest.CertStatus500)
	_, err := e.c.Create(context.Background(), e.bill("NOKEY01", 2000_00, testName))
	if err == nil {
		t.Fatal("a bill was created without a key to encrypt the name with")
	}
	var unknown *wechatpay.OutcomeUnknownError
	if errors.As(err, &unknown) {
		t.Errorf("%v: an OutcomeUnknownError for a request never sent", err)
	}
	if n := e.sent.count(createRoute); n != 0 {
		t.Errorf("create sent %d times; want none", n)
	}
	if strings.Contains(err.Error(), testName) {
		t.Errorf("the error quotes the name: %v", err)
	}
}

// Many concurrent creates of one out_bill_no, as a merchant's retrying
// fleet might send, make one bill: every answer names it.
func TestConcurrentCreateOneBill(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.c.QueryByOutBillNo(ctx, "WARM"); err == nil { // download the certificates once
		t.Fatal("found a bill nobody made")
	}
	req := e.bill("CONCURRENT01", 2100_00, testName)
	const n = 32
	nos := make(chan string, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := e.c.Create(ctx, req)
			if err != nil {
				t.Error(err)
				return
			}
			nos <- b.TransferBillNo
		}()
	}
	wg.Wait()
	close(nos)
	seen := map[string]bool{}
	for no := range nos {
		seen[no] = true
	}
	if q := simBill(t, e, "CONCURRENT01"); len(seen) != 1 || !seen[q.TransferBillNo] {
		t.Errorf("%d transfer_bill_no in the answers (%v), the bill is %s; want that one", len(seen), seen, q.TransferBillNo)
	}
}
