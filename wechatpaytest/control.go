package wechatpaytest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"time"
)

// The sandbox's control endpoints, for clients in any language: pay an
// order, queue faults, send a notification. They are authenticated like
// any APIv3 request, and act for the merchant that signed.

// control serves the control endpoints. It holds no state of its own.
type control struct {
	core   *core
	orders *orders
	faults *faults
	notes  *notifier
	// combine pays a combine order when PayPath names a
	// combine_out_trade_no.
	combine *combineOrders
}

// routes are the control endpoints.
func (ct *control) routes() []route {
	return []route{
		{"POST " + PayPath, signed, ct.servePay},
		{"POST " + FaultsPath, signed, ct.serveFaults},
		{"POST " + NotifyPath, raw, ct.serveNotify},
	}
}

// noRedirects sends notifications for Notify and the control endpoint:
// http.DefaultTransport, and no redirect is followed.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// PayPath is the sandbox's control endpoint that pays an order, for
// clients in any language ("wechatpay pay" uses it). The request is
// authenticated like any APIv3 request; its JSON body is
//
//	{"out_trade_no":"...","sub_mchid":"...","result":"SUCCESS"}
//
// where sub_mchid is for a service provider's order only and result is
// SUCCESS (the default), PAYERROR or USERPAYING. The answer is the order
// as the query routes show it, or WeChat Pay's error JSON. out_trade_no
// may name a combine order (its combine_out_trade_no): every sub-order
// is paid, and one notification is sent for the whole (PayCombine).
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

func (ct *control) servePay(w http.ResponseWriter, r *http.Request) {
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
	tx, serr := ct.orders.pay(orderKey(owner, req.OutTradeNo), caller, result)
	if serr == errOrderNotExist && req.SubMchID == "" { // perhaps a combine_out_trade_no
		tx, serr = ct.combine.pay(caller, req.OutTradeNo, result)
	}
	if serr != nil {
		writeSimError(w, serr)
		return
	}
	writeJSON(w, tx)
}

func (ct *control) serveFaults(w http.ResponseWriter, r *http.Request) {
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
		case !ct.faults.isFailable(req.Route):
			writeSimError(w, paramError("/route", "不是沙箱的内置路由", req.Route))
			return
		case !ok:
			writeSimError(w, paramError("/fault", "fault应为SYSTEM_ERROR、TIMEOUT或FREQUENCY_LIMITED", req.Fault))
			return
		case req.Count < 1 || req.Count > 1000:
			writeSimError(w, paramError("/count", "count应在1至1000之间", req.Count))
			return
		}
		ct.faults.queue(req.Route, f, req.Count)
	}
	if req.RefundOutcome != "" {
		if !validOutcome(req.RefundOutcome) {
			writeSimError(w, paramError("/refund_outcome", "refund_outcome应为SUCCESS、ABNORMAL、CLOSED或PROCESSING", req.RefundOutcome))
			return
		}
		ct.orders.setRefundOutcome(req.RefundOutcome)
	}
	w.WriteHeader(http.StatusNoContent)
}

// NotifyPath is the sandbox's control endpoint that sends a notification
// on behalf of the calling merchant; see Server.Notify. The request is
// authenticated like any APIv3 request and the notification is for the
// merchant of its Authorization. Its JSON body is
//
//	{"url":"http://...","event_type":"TRANSACTION.SUCCESS","resource":{...}}
//
// where event_type defaults to TRANSACTION.SUCCESS and resource (an object)
// to a sample payment, or a sample refund for REFUND.* events. The answer,
// signed like every sandbox response, is 200 with
// {"status":<the merchant's HTTP status>,"body":"<the first 1 KiB of its
// answer>"}, or 502 {"code":"NOTIFY_FAILED","message":...} if the URL
// could not be reached, or 400 PARAM_ERROR for a bad request.
const NotifyPath = "/sandbox/notify"

// maxNotifyAnswer is how much of the merchant's answer the control
// endpoint reports.
const maxNotifyAnswer = 1 << 10

// notifyTimeout bounds a notification sent through the control endpoint;
// WeChat Pay waits 5 seconds for an answer (docs/protocol.md §6), the sandbox a
// little longer for debugging.
const notifyTimeout = 10 * time.Second

type notifyCommand struct {
	URL       string          `json:"url"`
	EventType string          `json:"event_type"`
	Resource  json.RawMessage `json:"resource"`
}

type notifyResult struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
}

// serveNotify answers the control endpoint NotifyPath for the
// authenticated merchant.
func (ct *control) serveNotify(w http.ResponseWriter, r *http.Request) {
	m, body := ct.core.merchantOf(r), bodyOf(r)
	var cmd notifyCommand
	if err := json.Unmarshal(body, &cmd); err != nil {
		ct.core.writeError(w, r, m, http.StatusBadRequest, "PARAM_ERROR", "请求体不是合法的JSON: "+err.Error(), nil)
		return
	}
	u, err := url.Parse(cmd.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		ct.core.writeError(w, r, m, http.StatusBadRequest, "PARAM_ERROR", "url必须是http或https的绝对地址", nil)
		return
	}
	var resource any
	if raw := bytes.TrimSpace(cmd.Resource); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		if raw[0] != '{' {
			ct.core.writeError(w, r, m, http.StatusBadRequest, "PARAM_ERROR", "resource必须是JSON对象", nil)
			return
		}
		resource = json.RawMessage(raw)
	}
	ctx, cancel := context.WithTimeout(r.Context(), notifyTimeout)
	defer cancel()
	req, err := ct.notes.request(ctx, cmd.URL, cmd.EventType, resource, &notifyOptions{merchant: m.info.ID})
	var resp *http.Response
	if err == nil {
		resp, err = noRedirects.Do(req)
	}
	if err != nil {
		ct.core.writeError(w, r, m, http.StatusBadGateway, "NOTIFY_FAILED", "通知发送失败: "+err.Error(), nil)
		return
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxNotifyAnswer))
	resp.Body.Close()
	// json.Marshal turns invalid UTF-8, such as a character cut in two
	// by the limit, into U+FFFD.
	out, err := json.Marshal(notifyResult{Status: resp.StatusCode, Body: string(answer)})
	if err != nil {
		panic(err) // plain types always marshal
	}
	ct.core.writeSigned(w, r, m, http.StatusOK, jsonHeader, out, FaultNone)
}
