package wechatpaytest

import (
	"html/template"
	"net/http"
	"net/url"
)

// TransferConfirmPath is the sandbox's confirmation page, behind the
// cashier, where the user confirms a transfer as WeChat shows it after
// wx.requestMerchantTransfer: GET TransferConfirmPath?package=<package_info>
// shows the bill (merchant, amount in yuan, remark, state, and its
// callback deliveries) with a "Confirm receipt" button while the bill
// waits for the user. It needs no Authorization, as the user has none.
const TransferConfirmPath = CashierPath + "/transfer"

var transferPage = template.Must(template.New("transfer").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
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
{{with .Bill}}
<div class="amount" id="amount">¥{{$.Yuan}}</div>
<dl>
<dt>Merchant</dt><dd id="merchant">{{.Owner}}</dd>
<dt>Remark</dt><dd id="remark">{{.Remark}}</dd>
<dt>Bill</dt><dd id="bill">{{.OutBillNo}}</dd>
<dt>State</dt><dd class="state" id="state">{{.State}}</dd>
{{if .FailReason}}<dt>Reason</dt><dd id="reason">{{.FailReason}}</dd>{{end}}
</dl>
{{if $.Waiting}}
<form method="post" action="{{$.Action}}">
<input type="hidden" name="package" value="{{.Package}}">
<button id="confirm" type="submit">Confirm receipt of ¥{{$.Yuan}}</button>
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

// serveTransferConfirm serves the confirmation page and its form; the
// cashier's security headers are already set.
func (s *Server) serveTransferConfirm(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		s.serveTransferConfirmPost(w, r)
		return
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	s.expireTransfers()
	pkg := r.URL.Query().Get("package")
	x := &s.tr
	x.mu.Lock()
	var b *transferBill
	if k, ok := x.byPackage[pkg]; ok && pkg != "" {
		c := *x.bills[k]
		b = &c
	}
	x.mu.Unlock()
	if b == nil {
		http.Error(w, "WeChat Pay sandbox: no transfer with this package", http.StatusNotFound)
		return
	}
	var ds []Delivery
	for _, d := range s.Deliveries() {
		if d.MerchantID == b.Merchant && d.OutTradeNo == b.OutBillNo && d.EventType == "MCHTRANSFER.BILL.FINISHED" {
			ds = append(ds, d)
		}
	}
	delivered := false
	for _, d := range ds {
		delivered = delivered || d.OK
	}
	data := struct {
		Bill       *transferBill
		Yuan       string
		Waiting    bool
		Refresh    bool
		Action     string
		Deliveries []Delivery
	}{
		Bill:       b,
		Yuan:       yuan(b.Amount),
		Waiting:    b.State == transferWaiting,
		Refresh:    b.State == transferSuccess && b.NotifyURL != "" && !delivered && len(ds) < 3,
		Action:     TransferConfirmPath,
		Deliveries: ds,
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	transferPage.Execute(w, data)
}

// serveTransferConfirmPost confirms from the page, then shows it again.
func (s *Server) serveTransferConfirmPost(w http.ResponseWriter, r *http.Request) {
	// A page on another site must not confirm through the user's
	// browser: a cross-origin form post carries an Origin header.
	if origin := r.Header.Get("Origin"); origin != "" && origin != s.URL {
		http.Error(w, "WeChat Pay sandbox: cross-origin confirmation refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "WeChat Pay sandbox: bad form", http.StatusBadRequest)
		return
	}
	pkg := r.PostForm.Get("package")
	s.tr.mu.Lock()
	k, found := s.tr.byPackage[pkg]
	s.tr.mu.Unlock()
	if !found || pkg == "" {
		http.Error(w, "WeChat Pay sandbox: no transfer with this package", http.StatusNotFound)
		return
	}
	if _, serr := s.confirmTransfer(k, "", TransferConfirmed); serr != nil {
		http.Error(w, "WeChat Pay sandbox: "+serr.message+" ("+serr.code+")", serr.status)
		return
	}
	http.Redirect(w, r, TransferConfirmPath+"?package="+url.QueryEscape(pkg), http.StatusSeeOther)
}

// TransferConfirmURL returns the address of the confirmation page of the
// bill with packageInfo: what WeChat would open for
// wx.requestMerchantTransfer.
func (s *Server) TransferConfirmURL(packageInfo string) string {
	return s.URL + TransferConfirmPath + "?package=" + url.QueryEscape(packageInfo)
}
