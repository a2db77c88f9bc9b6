package wechatpaytest

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"time"
)

// A PayResult is how a simulated payment ends.
type PayResult int

const (
	// PaySuccess pays the order: it becomes SUCCESS with a
	// transaction_id, success_time and payer, and the server delivers a
	// TRANSACTION.SUCCESS notification to its notify_url.
	PaySuccess PayResult = iota
	// PayFail makes the payment fail: the order becomes PAYERROR and no
	// notification is sent. The payer may try again.
	PayFail
	// PayUserPaying leaves the payment pending: the order stays
	// USERPAYING (query answers it, close answers 202 USERPAYING) until
	// a later Pay ends it.
	PayUserPaying
)

var payResults = map[string]PayResult{"SUCCESS": PaySuccess, "PAYERROR": PayFail, "USERPAYING": PayUserPaying}

// Pay pays the order outTradeNo of merchant mchid as the payer would on
// WeChat Pay's cashier; mchid is the order's mchid, or its sub_mchid for a
// service provider's order. It has the same effect as the buttons of the
// cashier page and the command "wechatpay pay". The error, if any, is
// WeChat Pay's answer: ORDER_NOT_EXIST, ORDERPAID or ORDER_CLOSED.
func (s *Server) Pay(mchid, outTradeNo string, result PayResult) error {
	if _, err := s.pay(orderKey(mchid, outTradeNo), "", result); err != nil {
		return err
	}
	return nil
}

// pay ends a payment of the order with key k; a non-empty caller must be
// the merchant that placed it.
func (s *Server) pay(k, caller string, result PayResult) (map[string]any, *simError) {
	x := &s.sim
	x.mu.Lock()
	o := x.orders[k]
	if o == nil || (caller != "" && o.Merchant != caller) {
		x.mu.Unlock()
		return nil, errOrderNotExist
	}
	switch o.State {
	case stateSuccess, stateRefund:
		x.mu.Unlock()
		return nil, errOrderPaid
	case stateClosed:
		x.mu.Unlock()
		return nil, errOrderClosed
	}
	switch result {
	case PaySuccess:
		o.State = stateSuccess
		o.TransactionID = "4200" + randomDigits(24)
		o.SuccessTime = s.now()
		if o.OpenID == "" && o.SubOpenID == "" {
			o.OpenID = "oSandbox" + randomText(20)
		}
		x.byTx[o.TransactionID] = k
	case PayFail:
		o.State = statePayError
	default:
		o.State = stateUserPaying
	}
	tx := o.transactionJSON()
	n := notice{eventType: "TRANSACTION.SUCCESS", merchant: o.Merchant, outTradeNo: o.OutTradeNo, url: o.NotifyURL, resource: tx}
	s.saveLocked()
	x.mu.Unlock()
	if result == PaySuccess {
		s.notify(n)
	}
	return tx, nil
}

// PayPath is the sandbox's control endpoint that pays an order, for
// clients in any language ("wechatpay pay" uses it). The request is
// authenticated like any APIv3 request; its JSON body is
//
//	{"out_trade_no":"...","sub_mchid":"...","result":"SUCCESS"}
//
// where sub_mchid is for a service provider's order only and result is
// SUCCESS (the default), PAYERROR or USERPAYING. The answer is the order
// as the query routes show it, or WeChat Pay's error JSON.
const PayPath = "/sandbox/pay"

// FaultsPath is the sandbox's control endpoint for faults on demand. The
// request is authenticated; its JSON body is
//
//	{"route":"POST /v3/refund/domestic/refunds","fault":"SYSTEM_ERROR","count":1}
//
// with fault SYSTEM_ERROR, TIMEOUT or FREQUENCY_LIMITED (see FailRoute),
// and/or {"refund_outcome":"ABNORMAL"} (see SetRefundOutcome). It answers
// 204.
const FaultsPath = "/sandbox/faults"

func (s *Server) servePayControl(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OutTradeNo string `json:"out_trade_no"`
		SubMchID   string `json:"sub_mchid"`
		Result     string `json:"result"`
	}
	if serr := decodeObject(bodyOf(r), &req); serr != nil {
		writeSimError(w, serr)
		return
	}
	if req.OutTradeNo == "" {
		writeSimError(w, paramError("/out_trade_no", "缺少必填参数out_trade_no", nil))
		return
	}
	result, ok := PaySuccess, true
	if req.Result != "" {
		result, ok = payResults[req.Result]
	}
	if !ok {
		writeSimError(w, paramError("/result", "result应为SUCCESS、PAYERROR或USERPAYING", req.Result))
		return
	}
	caller := MerchantIDFrom(r.Context())
	owner := caller
	if req.SubMchID != "" {
		owner = req.SubMchID
	}
	tx, serr := s.pay(orderKey(owner, req.OutTradeNo), caller, result)
	if serr != nil {
		writeSimError(w, serr)
		return
	}
	writeJSON(w, tx)
}

var routeFaults = map[string]RouteFault{"SYSTEM_ERROR": RouteSystemError, "TIMEOUT": RouteTimeout, "FREQUENCY_LIMITED": RouteFrequencyLimited}

func (s *Server) serveFaultsControl(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Route         string `json:"route"`
		Fault         string `json:"fault"`
		Count         int    `json:"count"`
		RefundOutcome string `json:"refund_outcome"`
	}
	if serr := decodeObject(bodyOf(r), &req); serr != nil {
		writeSimError(w, serr)
		return
	}
	if req.Route != "" {
		f, ok := routeFaults[req.Fault]
		switch {
		case !s.isSimRoute(req.Route):
			writeSimError(w, paramError("/route", "不是沙箱的内置路由", req.Route))
			return
		case !ok:
			writeSimError(w, paramError("/fault", "fault应为SYSTEM_ERROR、TIMEOUT或FREQUENCY_LIMITED", req.Fault))
			return
		case req.Count < 1 || req.Count > 1000:
			writeSimError(w, paramError("/count", "count应在1至1000之间", req.Count))
			return
		}
		s.FailRoute(req.Route, f, req.Count)
	}
	if req.RefundOutcome != "" {
		if !validOutcome(req.RefundOutcome) {
			writeSimError(w, paramError("/refund_outcome", "refund_outcome应为SUCCESS、ABNORMAL、CLOSED或PROCESSING", req.RefundOutcome))
			return
		}
		s.SetRefundOutcome(req.RefundOutcome)
	}
	w.WriteHeader(http.StatusNoContent)
}

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

// serveCashier serves the cashier page and its form.
func (s *Server) serveCashier(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	if r.URL.Path == TransferConfirmPath {
		s.serveTransferConfirm(w, r) // transfers_page.go
		return
	}
	if r.URL.Path != CashierPath {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		s.serveCashierPost(w, r)
		return
	default:
		h.Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	prepayID := r.URL.Query().Get("prepay_id")
	x := &s.sim
	x.mu.Lock()
	var o *order
	if k, ok := x.byPay[prepayID]; ok {
		c := *x.orders[k]
		o = &c
	}
	var ds []Delivery
	if o != nil {
		for _, d := range x.log {
			if d.MerchantID == o.Merchant && d.OutTradeNo == o.OutTradeNo {
				ds = append(ds, d)
			}
		}
	}
	x.mu.Unlock()
	if o == nil {
		http.Error(w, "WeChat Pay sandbox: no order with this prepay_id", http.StatusNotFound)
		return
	}
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
		Order:      o,
		Yuan:       yuan(o.Total),
		Payable:    o.State == stateNotPay || o.State == statePayError || o.State == stateUserPaying,
		Refresh:    o.State == stateSuccess && !delivered && len(ds) < 3,
		Action:     CashierPath,
		Deliveries: ds,
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	cashierPage.Execute(w, data)
}

// serveCashierPost pays from the cashier form, then shows the page again.
func (s *Server) serveCashierPost(w http.ResponseWriter, r *http.Request) {
	// A page on another site must not pay orders through the payer's
	// browser: a cross-origin form post carries an Origin header.
	if origin := r.Header.Get("Origin"); origin != "" && origin != s.URL {
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
	s.sim.mu.Lock()
	k, found := s.sim.byPay[prepayID]
	s.sim.mu.Unlock()
	if !found {
		http.Error(w, "WeChat Pay sandbox: no order with this prepay_id", http.StatusNotFound)
		return
	}
	if _, serr := s.pay(k, "", result); serr != nil {
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

// hang holds a request that the route fault RouteTimeout answers with
// nothing, until the client gives up or the server closes.
func (s *Server) hang(ctx context.Context) {
	s.wait(ctx, -1)
}
