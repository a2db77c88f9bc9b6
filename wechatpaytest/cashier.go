package wechatpaytest

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"time"
)

// CashierPath is the sandbox's web cashier, where a payer pays an order:
// GET CashierPath?prepay_id=... shows the order (merchant, description,
// amount in yuan, state, and the callback deliveries made for it) with a
// Pay and a "Payment fails" button. Orders' code_url and h5_url lead to
// it. It needs no Authorization, as the payer has none.
const CashierPath = "/sandbox/cashier"

var cashierPage = template.Must(template.New("cashier").Funcs(template.FuncMap{
	"ms": func(d time.Duration) time.Duration { return d.Round(time.Millisecond) },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
{{if .Refresh}}<meta http-equiv="refresh" content="1">{{end}}
<title>WeChat Pay sandbox cashier</title>
<style>
body{font-family:sans-serif;background:#ededed;margin:0}
.card{max-width:420px;margin:40px auto;background:#fff;border-radius:8px;padding:24px;box-shadow:0 1px 4px #0002}
h1{font-size:16px;color:#07c160;margin:0 0 16px}
.amount{font-size:40px;font-weight:bold;text-align:center;margin:16px 0}
dl{display:grid;grid-template-columns:auto 1fr;gap:6px 12px;font-size:14px}dt{color:#888}dd{margin:0;word-break:break-all}
button{width:100%;padding:12px;margin-top:10px;border:0;border-radius:6px;font-size:16px;cursor:pointer}
#pay{background:#07c160;color:#fff}#fail{background:#fafafa;color:#fa5151;border:1px solid #ddd}
.state{font-weight:bold}table{width:100%;font-size:12px;border-collapse:collapse;margin-top:16px}td,th{border-top:1px solid #eee;padding:4px;text-align:left}
.note{font-size:12px;color:#888;margin-top:16px}
</style></head><body><div class="card">
<h1>WeChat Pay sandbox cashier</h1>
{{with .Order}}
<div class="amount" id="amount">¥{{$.Yuan}}</div>
<dl>
<dt>Merchant</dt><dd id="merchant">{{.Owner}}{{if .Partner}} (service provider {{.Merchant}}){{end}}</dd>
<dt>Description</dt><dd id="description">{{.Description}}</dd>
<dt>Order</dt><dd>{{.OutTradeNo}} ({{.TradeType}})</dd>
<dt>Amount</dt><dd>{{$.Yuan}} {{.Currency}} ({{.Total}} fen)</dd>
<dt>State</dt><dd class="state" id="state">{{.State}}</dd>
{{if .TransactionID}}<dt>Transaction</dt><dd id="transaction">{{.TransactionID}}</dd>{{end}}
</dl>
{{if $.Payable}}
<form method="post" action="{{$.Action}}">
<input type="hidden" name="prepay_id" value="{{.PrepayID}}">
<button id="pay" name="result" value="SUCCESS" type="submit">Pay ¥{{$.Yuan}}</button>
<button id="fail" name="result" value="PAYERROR" type="submit">Payment fails</button>
</form>
{{end}}
{{end}}
{{if .Deliveries}}
<table id="deliveries"><tr><th>Callback</th><th>Attempt</th><th>Answer</th><th>Time</th></tr>
{{range .Deliveries}}<tr><td>{{.EventType}}</td><td>{{.Attempt}}{{if .Duplicate}} (dup){{end}}</td><td>{{if .Status}}{{.Status}}{{else}}{{.Err}}{{end}}{{if .OK}} ✓{{end}}</td><td>{{ms .Duration}}</td></tr>
{{end}}</table>
{{end}}
<p class="note">Sandbox: no money moves. Notifications go to {{with .Order}}{{.NotifyURL}}{{end}}.</p>
</div></body></html>
`))

// cashier is the payer's page. It holds no state of its own.
type cashier struct {
	orders   *orders
	delivery *delivery
	url      string // the server's base URL: the only Origin that may pay
}

// ServeHTTP serves the cashier page and its form.
func (c *cashier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	if r.URL.Path != CashierPath {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		c.pay(w, r)
		return
	default:
		h.Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	o, ok := c.orders.lookupPrepay(r.URL.Query().Get("prepay_id"))
	if !ok {
		http.Error(w, "WeChat Pay sandbox: no order with this prepay_id", http.StatusNotFound)
		return
	}
	ds := c.delivery.deliveries(func(d *Delivery) bool { return d.MerchantID == o.Merchant && d.OutTradeNo == o.OutTradeNo })
	delivered := false
	for _, d := range ds {
		delivered = delivered || d.OK
	}
	data := struct {
		Order      *order
		Yuan       string
		Payable    bool
		Refresh    bool
		Action     string
		Deliveries []Delivery
	}{
		Order:      &o,
		Yuan:       yuan(o.Total),
		Payable:    o.State == stateNotPay || o.State == statePayError || o.State == stateUserPaying,
		Refresh:    o.State == stateSuccess && !delivered && len(ds) < 3,
		Action:     CashierPath,
		Deliveries: ds,
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	cashierPage.Execute(w, data)
}

// pay pays from the cashier form, then shows the page again.
func (c *cashier) pay(w http.ResponseWriter, r *http.Request) {
	// A page on another site must not pay orders through the payer's
	// browser: a cross-origin form post carries an Origin header.
	if origin := r.Header.Get("Origin"); origin != "" && origin != c.url {
		http.Error(w, "WeChat Pay sandbox: cross-origin payment refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "WeChat Pay sandbox: bad form", http.StatusBadRequest)
		return
	}
	prepayID := r.PostForm.Get("prepay_id")
	result, ok := payResults[r.PostForm.Get("result")]
	if !ok || result == PayUserPaying {
		http.Error(w, "WeChat Pay sandbox: result must be SUCCESS or PAYERROR", http.StatusBadRequest)
		return
	}
	o, found := c.orders.lookupPrepay(prepayID)
	if !found {
		http.Error(w, "WeChat Pay sandbox: no order with this prepay_id", http.StatusNotFound)
		return
	}
	if _, serr := c.orders.pay(orderKey(o.Owner, o.OutTradeNo), "", result); serr != nil {
		http.Error(w, fmt.Sprintf("WeChat Pay sandbox: %s (%s)", serr.message, serr.code), serr.status)
		return
	}
	http.Redirect(w, r, CashierPath+"?prepay_id="+url.QueryEscape(prepayID), http.StatusSeeOther)
}

// yuan formats an amount in fen as yuan with two decimals, without
// floating point.
func yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}
