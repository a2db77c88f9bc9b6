package wechatpaytest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The create route allows WeChat Pay's documented 100 calls per second
// per merchant; the next is FREQUENCY_LIMITED, and the count starts again
// the next second and is kept apart per merchant.
func TestTransferRateLimit(t *testing.T) {
	var x transfers
	x.init()
	t0 := time.Date(2026, 1, 15, 10, 0, 0, 0, beijing)
	for i := range transferRateLimit {
		if !x.allowCreate("A", t0.Add(time.Duration(i)*time.Millisecond)) {
			t.Fatalf("call %d of the second refused", i+1)
		}
	}
	if x.allowCreate("A", t0.Add(999*time.Millisecond)) {
		t.Error("call 101 within one second allowed")
	}
	if !x.allowCreate("B", t0.Add(999*time.Millisecond)) {
		t.Error("another merchant's first call refused")
	}
	if !x.allowCreate("A", t0.Add(time.Second)) {
		t.Error("the first call of the next second refused")
	}
}

// The refusal goes out as WeChat Pay's 429 FREQUENCY_LIMITED, and makes
// no bill.
func TestTransferRateLimitAnswer(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	m := srv.Merchant()
	srv.tr.mu.Lock()
	srv.tr.limit = 0
	srv.tr.mu.Unlock()
	body := `{"appid":"wx1","out_bill_no":"RATE01","transfer_scene_id":"1000","openid":"o1","transfer_amount":100,"transfer_remark":"r"}`
	resp, b := do(t, srv, m, "POST", "/v3/fund-app/mch-transfer/transfer-bills", []byte(body))
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(b), "FREQUENCY_LIMITED") {
		t.Errorf("answer %d %s; want 429 FREQUENCY_LIMITED", resp.StatusCode, b)
	}
	if n := len(srv.tr.bills); n != 0 {
		t.Errorf("%d bills; want none", n)
	}
}

// billState is the state of the bill no of merchant mchid.
func billState(srv *Server, mchid, no string) string {
	srv.tr.mu.Lock()
	defer srv.tr.mu.Unlock()
	if b := srv.tr.bills[mchid+"/"+no]; b != nil {
		return b.State
	}
	return ""
}

// createTransfer makes a bill through the API and returns its package_info.
func createTransfer(t *testing.T, srv *Server, m Merchant, no, notifyURL string) string {
	t.Helper()
	body := fmt.Sprintf(`{"appid":"wx1","out_bill_no":%q,"transfer_scene_id":"1000","openid":"o1","transfer_amount":2345,"transfer_remark":"新会员开通有礼","notify_url":%q}`, no, notifyURL)
	resp, b := do(t, srv, m, "POST", "/v3/fund-app/mch-transfer/transfer-bills", []byte(body))
	var out struct {
		State       string `json:"state"`
		PackageInfo string `json:"package_info"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &out) != nil || out.State != "WAIT_USER_CONFIRM" || out.PackageInfo == "" {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	return out.PackageInfo
}

// The confirmation page shows the bill and confirms it from its form;
// a cross-origin post is refused; an unknown package is 404; the control
// endpoint confirms for clients in any language.
func TestTransferConfirmPage(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	m := srv.Merchant()
	pkg := createTransfer(t, srv, m, "PAGE01", "")

	page := TransferConfirmURL(srv.URL, pkg)
	resp, err := http.Get(page)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"¥23.45", "PAGE01", "WAIT_USER_CONFIRM", `id="confirm"`, "新会员开通有礼"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("page lacks %q:\n%s", want, b)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}

	form := url.Values{"package": {pkg}}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+TransferConfirmPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st := billState(srv, m.ID, "PAGE01"); resp.StatusCode != http.StatusForbidden || st != "WAIT_USER_CONFIRM" {
		t.Errorf("cross-origin post: %d, state %s; want 403 and no change", resp.StatusCode, st)
	}

	resp, err = http.PostForm(srv.URL+TransferConfirmPath, form)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "SUCCESS") || strings.Contains(string(b), `id="confirm"`) {
		t.Errorf("after confirming: %d\n%s", resp.StatusCode, b)
	}
	if st := billState(srv, m.ID, "PAGE01"); st != "SUCCESS" {
		t.Errorf("state %s; want SUCCESS", st)
	}

	resp, err = http.Get(TransferConfirmURL(srv.URL, "nosuchpackage"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown package: %d; want 404", resp.StatusCode)
	}

	createTransfer(t, srv, m, "CTRL01", "")
	resp, b = do(t, srv, m, "POST", ConfirmTransferPath, []byte(`{"out_bill_no":"CTRL01","result":"FAIL"}`))
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"state":"FAIL"`) {
		t.Errorf("control endpoint: %d %s; want the FAIL bill", resp.StatusCode, b)
	}
	other := srv.AddMerchant()
	resp, b = do(t, srv, other, "POST", ConfirmTransferPath, []byte(`{"out_bill_no":"PAGE01"}`))
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("another merchant's confirmation: %d %s; want 404", resp.StatusCode, b)
	}
}

// An authorisation's package_info opens the same page, which grants it;
// the control endpoint grants one by out_authorization_no.
func TestAuthorizationOnConfirmPage(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	m := srv.Merchant()
	ask := func(no string) string {
		body := fmt.Sprintf(`{"out_authorization_no":%q,"appid":"wx1","openid":"o1","transfer_scene_id":"1000","user_display_name":"wx_1","authorization_notify_url":"https://merchant.example/auth"}`, no)
		resp, b := do(t, srv, m, "POST", "/v3/fund-app/mch-transfer/user-confirm-authorization", []byte(body))
		var out struct {
			PackageInfo string `json:"package_info"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(b, &out) != nil || out.PackageInfo == "" {
			t.Fatalf("authorisation: %d %s", resp.StatusCode, b)
		}
		return out.PackageInfo
	}
	pkg := ask("AUTHPAGE1")
	resp, err := http.PostForm(srv.URL+TransferConfirmPath, url.Values{"package": {pkg}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), authorizationConfirmed) {
		t.Errorf("after granting on the page: %d\n%s", resp.StatusCode, b)
	}
	ask("AUTHCTRL1")
	resp2, b2 := do(t, srv, m, "POST", ConfirmTransferPath, []byte(`{"out_authorization_no":"AUTHCTRL1"}`))
	if resp2.StatusCode != 200 || !strings.Contains(string(b2), authorizationConfirmed) {
		t.Errorf("control endpoint: %d %s", resp2.StatusCode, b2)
	}
	other := srv.AddMerchant()
	if resp3, b3 := do(t, srv, other, "POST", ConfirmTransferPath, []byte(`{"out_authorization_no":"AUTHCTRL1"}`)); resp3.StatusCode != http.StatusNotFound {
		t.Errorf("another merchant's grant: %d %s; want 404", resp3.StatusCode, b3)
	}
}

// A bill the user does not confirm within 24 hours of the part's clock
// becomes FAIL (OVERDUE_CLOSE), and its MCHTRANSFER.BILL.FINISHED goes
// out; at 23 hours it still waits.
func TestTransferExpiry(t *testing.T) {
	delivered := make(chan Delivery, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer hook.Close()
	srv := NewServer(OnDelivery(func(d Delivery) { delivered <- d }))
	defer srv.Close()
	m := srv.Merchant()
	createTransfer(t, srv, m, "EXPIRE01", hook.URL)
	srv.tr.advance(23 * time.Hour)
	if st := billState(srv, m.ID, "EXPIRE01"); st != "WAIT_USER_CONFIRM" {
		t.Fatalf("after 23 h: %s; want WAIT_USER_CONFIRM", st)
	}
	srv.tr.advance(time.Hour)
	resp, b := do(t, srv, m, "GET", "/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/EXPIRE01", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"state":"FAIL"`) || !strings.Contains(string(b), "OVERDUE_CLOSE") {
		t.Errorf("query after 24 h: %d %s; want FAIL, OVERDUE_CLOSE", resp.StatusCode, b)
	}
	if d := <-delivered; d.EventType != "MCHTRANSFER.BILL.FINISHED" || d.OutTradeNo != "EXPIRE01" || !d.OK {
		t.Errorf("delivery %v; want the bill's MCHTRANSFER.BILL.FINISHED, delivered", d)
	}
}
