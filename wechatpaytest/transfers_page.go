package wechatpaytest

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"
)

// TransferConfirmPath is the sandbox's confirmation page, behind the
// cashier, where the user confirms a transfer as WeChat shows it after
// wx.requestMerchantTransfer: GET TransferConfirmPath?package=<package_info>
// shows the bill (merchant, amount in yuan, remark, state, and its
// callback deliveries) with a "Confirm receipt" button while the bill
// waits for the user. It needs no Authorization, as the user has none.
const TransferConfirmPath = CashierPath + "/transfer"

var transferPage = template.Must(template.New("transfer").Parse(`<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{{if .Refresh}}<meta http-equiv="refresh" content="1">{{end}}
<title>WeChat Pay sandbox: confirm a transfer</title>
<style>
body{font-family:sans-serif;background:#ededed;margin:0}
.card{max-width:420px;margin:40px auto;background:#fff;border-radius:8px;padding:24px;box-shadow:0 1px 4px #0002}
h1{font-size:16px;color:#07c160;margin:0 0 16px}
.amount{font-size:40px;font-weight:bold;text-align:center;margin:16px 0}
dl{display:grid;grid-template-columns:auto 1fr;gap:6px 12px;font-size:14px}dt{color:#888}dd{margin:0;word-break:break-all}
button{width:100%;padding:12px;margin-top:10px;border:0;border-radius:6px;font-size:16px;cursor:pointer;background:#07c160;color:#fff}
.state{font-weight:bold}table{width:100%;font-size:12px;border-collapse:collapse;margin-top:16px}td,th{border-top:1px solid #eee;padding:4px;text-align:left}
.note{font-size:12px;color:#888;margin-top:16px}
</style></head><body><div class="card">
<h1>WeChat Pay sandbox: money from a merchant</h1>
{{with .View}}
{{if not .Authorization}}<div class="amount" id="amount">¥{{$.Yuan}}</div>{{end}}
<dl>
<dt>Merchant</dt><dd id="merchant">{{.Owner}}</dd>
<dt>Remark</dt><dd id="remark">{{.Remark}}</dd>
<dt>{{if .Authorization}}Authorisation{{else}}Bill{{end}}</dt><dd id="bill">{{.Number}}</dd>
<dt>State</dt><dd class="state" id="state">{{.State}}</dd>
{{if .FailReason}}<dt>Reason</dt><dd id="reason">{{.FailReason}}</dd>{{end}}
</dl>
{{if $.Waiting}}
<form method="post" action="{{$.Action}}">
<input type="hidden" name="package" value="{{$.Package}}">
<button id="confirm" type="submit">{{if .Authorization}}Allow transfers without confirming 开通免确认收款{{else}}Confirm receipt of ¥{{$.Yuan}} 确认收款{{end}}</button>
</form>
{{end}}
{{end}}
{{if .Deliveries}}
<table id="deliveries"><tr><th>Callback</th><th>Attempt</th><th>Answer</th></tr>
{{range .Deliveries}}<tr><td>{{.EventType}}</td><td>{{.Attempt}}</td><td>{{if .Status}}{{.Status}}{{else}}{{.Err}}{{end}}{{if .OK}} ✓{{end}}</td></tr>
{{end}}</table>
{{end}}
<p class="note">Sandbox: no money moves. This page only shows what the user sees; the merchant learns the result from the notification or a query.</p>
</div></body></html>
`))

// pageView is what the confirmation page shows: a bill, or an
// authorisation the user is asked for (its package comes from
// RequestAuthorization and goes through the same front-end call).
type pageView struct {
	Owner, Remark, Number, State, FailReason, NotifyURL string
	Amount                                              int64
	Authorization                                       bool
	merchant                                            string
}

// lookupPackage finds the bill or authorisation with package_info pkg.
func (x *transfers) lookupPackage(pkg string) (pageView, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if pkg == "" {
		return pageView{}, false
	}
	if k, ok := x.byPackage[pkg]; ok {
		b := x.bills[k]
		return pageView{Owner: b.Owner, Remark: b.Remark, Number: b.OutBillNo, State: b.State, FailReason: b.FailReason,
			NotifyURL: b.NotifyURL, Amount: b.Amount, merchant: b.Merchant}, true
	}
	for _, a := range x.auths {
		if a.Package == pkg {
			return pageView{Owner: a.Merchant, Remark: "免确认收款授权 " + a.SceneID, Number: a.OutAuthorizationNo, State: a.State,
				NotifyURL: a.NotifyURL, Authorization: true, merchant: a.Merchant}, true
		}
	}
	return pageView{}, false
}

// ServeHTTP serves the confirmation page and its form; the cashier has
// set its security headers.
func (x *transfers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		x.confirmFromPage(w, r)
		return
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	x.expireTransfers()
	pkg := r.URL.Query().Get("package")
	v, ok := x.lookupPackage(pkg)
	if !ok {
		http.Error(w, "WeChat Pay sandbox: no transfer or authorisation with this package", http.StatusNotFound)
		return
	}
	ds := x.delivery.deliveries(func(d *Delivery) bool {
		return d.MerchantID == v.merchant && d.OutTradeNo == v.Number && strings.HasPrefix(d.EventType, "MCHTRANSFER.")
	})
	delivered := false
	for _, d := range ds {
		delivered = delivered || d.OK
	}
	final := v.State != transferWaiting
	data := struct {
		View       pageView
		Yuan       string
		Waiting    bool
		Refresh    bool
		Action     string
		Package    string
		Deliveries []Delivery
	}{
		View:       v,
		Yuan:       yuan(v.Amount),
		Waiting:    !final,
		Refresh:    final && v.NotifyURL != "" && !delivered && len(ds) < 3,
		Action:     TransferConfirmPath,
		Package:    pkg,
		Deliveries: ds,
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	transferPage.Execute(w, data)
}

// confirmFromPage confirms from the page's form, then shows it again.
func (x *transfers) confirmFromPage(w http.ResponseWriter, r *http.Request) {
	// A page on another site must not confirm through the user's
	// browser: a cross-origin form post carries an Origin header.
	if origin := r.Header.Get("Origin"); origin != "" && origin != x.url {
		http.Error(w, "WeChat Pay sandbox: cross-origin confirmation refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "WeChat Pay sandbox: bad form", http.StatusBadRequest)
		return
	}
	pkg := r.PostForm.Get("package")
	v, ok := x.lookupPackage(pkg)
	if !ok {
		http.Error(w, "WeChat Pay sandbox: no transfer or authorisation with this package", http.StatusNotFound)
		return
	}
	var serr *simError
	if v.Authorization {
		_, serr = x.confirmAuthorization(v.merchant+"/"+v.Number, "")
	} else {
		x.mu.Lock()
		k := x.byPackage[pkg]
		x.mu.Unlock()
		_, serr = x.confirmTransfer(k, "", transferConfirmed)
	}
	if serr != nil {
		http.Error(w, "WeChat Pay sandbox: "+serr.message+" ("+serr.code+")", serr.status)
		return
	}
	http.Redirect(w, r, TransferConfirmPath+"?package="+url.QueryEscape(pkg), http.StatusSeeOther)
}

// TransferConfirmURL returns the address of the confirmation page, on
// the sandbox at baseURL, of the bill or authorisation with packageInfo:
// what WeChat opens for wx.requestMerchantTransfer.
func TransferConfirmURL(baseURL, packageInfo string) string {
	return strings.TrimRight(baseURL, "/") + TransferConfirmPath + "?package=" + url.QueryEscape(packageInfo)
}
