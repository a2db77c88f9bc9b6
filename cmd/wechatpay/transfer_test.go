package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// A bill made on a running sandbox is confirmed with "wechatpay
// confirm-transfer", which prints it SUCCESS; the sandbox posts the
// MCHTRANSFER.BILL.FINISHED callback; a second confirmation is refused.
func TestConfirmTransferCommand(t *testing.T) {
	got := make(chan struct{}, 1)
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
		select {
		case got <- struct{}{}:
		default:
		}
	}))
	defer merchant.Close()
	_, dir, stop := startSandboxCmd(t)
	defer stop()
	bill := `{"appid":"wxd678efh567hg6787","out_bill_no":"CMD1001","transfer_scene_id":"1000","openid":"o1","transfer_amount":100,"transfer_remark":"reward","notify_url":"` + merchant.URL + `/notify"}`
	wantCode(t, runApp(t, nil, "", "post", "-sandbox-dir", dir, "/v3/fund-app/mch-transfer/transfer-bills", "-d", bill), exitOK, `"state":"WAIT_USER_CONFIRM"`, `"package_info":"`)
	wantCode(t, runApp(t, nil, "", "confirm-transfer", "-sandbox-dir", dir, "CMD1001"), exitOK, `"state":"SUCCESS"`, `"out_bill_no":"CMD1001"`)
	select {
	case <-got:
	case <-time.After(30 * time.Second): // a hang guard, not a budget
		t.Fatal("no callback reached the merchant")
	}
	wantCode(t, runApp(t, nil, "", "confirm-transfer", "-sandbox-dir", dir, "CMD1001"), exitAPIError, "INVALID_REQUEST")
	wantCode(t, runApp(t, nil, "", "confirm-transfer", "-sandbox-dir", dir, "NOSUCH01"), exitAPIError, "NOT_FOUND")
	wantCode(t, runApp(t, nil, "", "confirm-transfer", "-sandbox-dir", dir), exitUsage, "OUT_BILL_NO")

	// The example of -h, as printed (its notify_url need not answer).
	example := `{"appid":"wxd678efh567hg6787","out_bill_no":"B1001","transfer_scene_id":"1000","openid":"o-MYE42l80oelYMDE34nYD456Xoy","transfer_amount":100,"transfer_remark":"reward","notify_url":"http://127.0.0.1:9000/notify"}`
	wantCode(t, runApp(t, nil, "", "post", "-sandbox-dir", dir, "/v3/fund-app/mch-transfer/transfer-bills", "-d", example), exitOK, `"state":"WAIT_USER_CONFIRM"`)
	wantCode(t, runApp(t, nil, "", "confirm-transfer", "-sandbox-dir", dir, "B1001"), exitOK, `"state":"SUCCESS"`)
}

// "payparams -kind transfer" prints exactly wx.requestMerchantTransfer's
// fields; "-kind transfer-app" the App's businessType and query string.
func TestPayparamsTransfer(t *testing.T) {
	r := runApp(t, nil, "", "payparams", "-kind", "transfer", "-mchid", "1230000109", "-appid", "wxd678efh567hg6787", "-package", "ABBQO+oYAAAB/==", "-openid", "o1")
	wantCode(t, r, exitOK)
	var p map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("%v:\n%s", err, r.stdout)
	}
	want := map[string]string{"mchId": "1230000109", "appId": "wxd678efh567hg6787", "package": "ABBQO+oYAAAB/==", "openId": "o1"}
	if len(p) != len(want) {
		t.Errorf("params %v; want %v", p, want)
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("%s = %q; want %q", k, p[k], v)
		}
	}
	r = runApp(t, map[string]string{"WECHATPAY_MCHID": "1230000000"}, "", "payparams", "-kind=transfer-app", "-appid", "wx8888888888888888", "-package", "affffddafdfafddffda==")
	wantCode(t, r, exitOK, `"businessType": "requestMerchantTransfer"`)
	var app map[string]string
	json.Unmarshal([]byte(r.stdout), &app)
	if app["query"] != "mchId=1230000000&appId=wx8888888888888888&package=affffddafdfafddffda%3D%3D" {
		t.Errorf("query %q", app["query"])
	}
	if v, err := url.ParseQuery(app["query"]); err != nil || v.Get("package") != "affffddafdfafddffda==" {
		t.Errorf("query does not decode: %v", err)
	}
	// The example of -h, as printed.
	wantCode(t, runApp(t, nil, "", "payparams", "-kind", "transfer", "-mchid", "1230000109", "-appid", "wxd678efh567hg6787", "-package", "ABBQO+oYAAABAAAAAAC/dH=="),
		exitOK, `"mchId": "1230000109"`, `"package": "ABBQO+oYAAABAAAAAAC/dH=="`)
	wantCode(t, runApp(t, nil, "", "payparams", "-kind", "transfer", "-appid", "wx1", "-package", "p"), exitUsage, "merchant ID is missing")
	wantCode(t, runApp(t, nil, "", "payparams", "-kind", "transfer", "-mchid", "1"), exitUsage, "-package")
	// The payment kinds are untouched.
	wantCode(t, runApp(t, nil, "", "payparams", "-kind", "nope", "-appid", "wx1", "-prepay-id", "p"), exitUsage, "want jsapi or app")
}
