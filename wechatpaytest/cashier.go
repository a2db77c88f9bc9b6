package wechatpaytest

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// CashierPath is the sandbox's web cashier, where a payer pays an order:
// GET CashierPath?prepay_id=... shows the order (merchant, description,
// amount in yuan, state) with a Pay and a "Payment fails" button, then
// the payer's result (支付成功 Payment successful, 支付失败 Payment
// failed) and the callback deliveries made for the order: when, which
// attempt, the merchant's answer in short and when the next retry comes.
// It fits a phone's screen. Orders' code_url and h5_url lead to it. It
// needs no Authorization, as the payer has none.
const CashierPath = "/sandbox/cashier"

var cashierPage = template.Must(template.New("cashier").Parse(`<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{{if .Refresh}}<meta http-equiv="refresh" content="1">{{end}}
<title>WeChat Pay sandbox cashier</title>
<style>
*{box-sizing:border-box}
body{font-family:-apple-system,"PingFang SC","Noto Sans CJK SC","WenQuanYi Zen Hei",sans-serif;background:#ededed;margin:0;color:#111}
.card{max-width:420px;margin:24px auto;background:#fff;border-radius:8px;padding:20px;box-shadow:0 1px 4px #0002}
@media (max-width:460px){.card{margin:0;border-radius:0;box-shadow:none;min-height:100vh;padding:16px}}
h1{font-size:16px;color:#07c160;margin:0 0 12px}
.result{text-align:center;margin:8px 0 4px;font-size:20px;font-weight:bold}
.result small{display:block;font-size:14px;font-weight:normal;color:#888}
.ok{color:#07c160}.failed{color:#fa5151}.pending{color:#576b95}
.amount{font-size:40px;font-weight:bold;text-align:center;margin:12px 0}
dl{display:grid;grid-template-columns:auto minmax(0,1fr);gap:6px 12px;font-size:14px}dt{color:#888}dd{margin:0;overflow-wrap:anywhere}
button{width:100%;padding:12px;margin-top:10px;border:0;border-radius:6px;font-size:16px;cursor:pointer}
#pay{background:#07c160;color:#fff}#fail{background:#fafafa;color:#fa5151;border:1px solid #ddd}
.state{font-weight:bold}
h2{font-size:13px;color:#888;margin:20px 0 4px;font-weight:normal}
table{width:100%;table-layout:fixed;font-size:12px;border-collapse:collapse}
td,th{border-top:1px solid #eee;padding:4px 3px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{color:#888;font-weight:normal}
col.time{width:19%}col.attempt{width:11%}col.answer{width:37%}col.next{width:33%}
.note{font-size:12px;color:#888;margin-top:16px;overflow-wrap:anywhere}
</style></head><body><div class="card">
<h1>WeChat Pay sandbox · 微信支付沙箱</h1>
{{with .Result}}<div class="result {{.Class}}" id="result">{{.Chinese}}<small>{{.English}}</small></div>{{end}}
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
<button id="pay" name="result" value="SUCCESS" type="submit">Pay 支付 ¥{{$.Yuan}}</button>
<button id="fail" name="result" value="PAYERROR" type="submit">Payment fails 支付失败</button>
</form>
{{end}}
{{end}}
{{if .Rows}}
<h2>Callbacks to the merchant 支付通知</h2>
<table id="deliveries"><colgroup><col class="time"><col class="attempt"><col class="answer"><col class="next"></colgroup>
<tr><th>Time</th><th>Try</th><th>Answer</th><th>Next retry</th></tr>
{{range .Rows}}<tr><td>{{.Time}}</td><td>{{.Attempt}}</td><td>{{.Answer}}</td><td>{{.Next}}</td></tr>
{{end}}</table>
{{end}}
<p class="note">Sandbox: no money moves. Notifications go to {{with .Order}}{{.NotifyURL}}{{end}}.</p>
</div></body></html>
`))

// cashierResult is what the payer is told of the payment.
type cashierResult struct {
	Class, Chinese, English string
}

// payerResult returns the result the payer sees for an order state, or
// nil before any attempt to pay.
func payerResult(state string) *cashierResult {
	switch state {
	case stateSuccess, stateRefund:
		return &cashierResult{"ok", "支付成功", "Payment successful"}
	case statePayError:
		return &cashierResult{"failed", "支付失败", "Payment failed"}
	case stateUserPaying:
		return &cashierResult{"pending", "支付中", "Payment in progress"}
	case stateClosed:
		return &cashierResult{"failed", "订单已关闭", "Order closed"}
	}
	return nil
}

// deliveryRow is a callback delivery as the cashier's table shows it.
type deliveryRow struct {
	Time, Attempt, Answer, Next string
}

// deliveryRows describes ds, the deliveries of one order in the order they
// ended: the time, the attempt, a short answer, and for the last failed
// attempt of a notification when the next retry comes (or that none
// will).
func deliveryRows(ds []Delivery, retries []time.Duration) []deliveryRow {
	last := make(map[string]int) // notification id → index of its last attempt
	for i, d := range ds {
		last[d.ID] = i
	}
	rows := make([]deliveryRow, len(ds))
	for i, d := range ds {
		r := deliveryRow{Time: d.Start.Format("15:04:05"), Attempt: fmt.Sprint(d.Attempt), Answer: shortAnswer(d), Next: "—"}
		if d.Duplicate {
			r.Attempt += " (dup)"
		}
		if !d.OK && last[d.ID] == i && !d.Duplicate {
			if d.Attempt <= len(retries) {
				r.Next = d.Start.Add(d.Duration).Add(retries[d.Attempt-1]).Format("15:04:05")
			} else {
				r.Next = "none: gave up"
			}
		}
		rows[i] = r
	}
	return rows
}

// shortAnswer is the merchant's answer in a few words: the status, or
// why there was none, without the dial error's addresses.
func shortAnswer(d Delivery) string {
	if d.Status != 0 {
		s := fmt.Sprintf("%d %s", d.Status, http.StatusText(d.Status))
		if d.OK {
			s += " ✓"
		}
		return s
	}
	switch e := d.Err; {
	case strings.HasPrefix(e, "no answer within"):
		return e
	case strings.Contains(e, "connection refused"):
		return "connection refused"
	case strings.Contains(e, "no such host"):
		return "unknown host"
	case strings.Contains(e, "timeout"), strings.Contains(e, "deadline exceeded"):
		return "timed out"
	case strings.Contains(e, "connection reset"), strings.Contains(e, "EOF"):
		return "connection closed"
	case strings.Contains(e, "certificate"), strings.Contains(e, "tls"):
		return "TLS error"
	}
	return "no answer"
}

// cashier is the payer's page. It holds no state of its own.
type cashier struct {
	orders   *orders
	delivery *delivery
	url      string // the server's base URL: the only Origin that may pay
	transfer http.Handler
}

// ServeHTTP serves the cashier page and its form.
func (c *cashier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	if r.URL.Path == TransferConfirmPath && c.transfer != nil {
		c.transfer.ServeHTTP(w, r) // transfers_page.go: the user's confirmation, behind the cashier
		return
	}
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
		Order   *order
		Result  *cashierResult
		Yuan    string
		Payable bool
		Refresh bool
		Action  string
		Rows    []deliveryRow
	}{
		Order:   &o,
		Result:  payerResult(o.State),
		Yuan:    yuan(o.Total),
		Payable: o.State == stateNotPay || o.State == statePayError || o.State == stateUserPaying,
		Refresh: o.State == stateSuccess && !delivered && len(ds) < 3,
		Action:  CashierPath,
		Rows:    deliveryRows(ds, c.delivery.retries),
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
