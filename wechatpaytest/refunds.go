package wechatpaytest

import (
	"context"
	"net/http"
	"regexp"
	"time"
	"unicode/utf8"
)

// refund is one simulated refund.
type refund struct {
	Owner         string    `json:"owner"`
	Merchant      string    `json:"merchant"`
	OrderKey      string    `json:"order"`
	OutRefundNo   string    `json:"out_refund_no"`
	RefundID      string    `json:"refund_id"`
	Reason        string    `json:"reason,omitempty"`
	NotifyURL     string    `json:"notify_url,omitempty"`
	Refund        int64     `json:"refund"`
	Status        string    `json:"status"` // PROCESSING, SUCCESS, ABNORMAL, CLOSED
	Outcome       string    `json:"outcome"`
	CreateTime    time.Time `json:"create_time"`
	SuccessTime   time.Time `json:"success_time,omitzero"`
	Fingerprint   string    `json:"fingerprint"`
	TransactionID string    `json:"transaction_id"`
	OutTradeNo    string    `json:"out_trade_no"`
}

func refundKey(owner, outRefundNo string) string { return owner + "/" + outRefundNo }

// Refund statuses (docs/protocol.md §12).
const (
	refundProcessing = "PROCESSING"
	refundSuccess    = "SUCCESS"
	refundAbnormal   = "ABNORMAL"
	refundClosed     = "CLOSED"
)

func validOutcome(s string) bool {
	switch s {
	case refundSuccess, refundAbnormal, refundClosed, refundProcessing:
		return true
	}
	return false
}

// WithRefundDelay sets how long a refund stays PROCESSING before it ends
// in the status set by SetRefundOutcome; the default is one second.
func WithRefundDelay(d time.Duration) Option { return func(o *options) { o.refundDelay = d } }

// setRefundOutcome sets the status new refunds end in.
func (od *orders) setRefundOutcome(status string) {
	od.mu.Lock()
	defer od.mu.Unlock()
	od.outcome = status
}

// refundRoutes are the refund routes.
func (od *orders) refundRoutes() []route {
	return []route{
		{"POST /v3/refund/domestic/refunds", failable, od.serveRefund},
		{"GET /v3/refund/domestic/refunds/{no}", failable, od.serveRefundQuery},
	}
}

var (
	errRefundNoOrder  = &simError{http.StatusNotFound, "RESOURCE_NOT_EXISTS", "订单不存在", nil}
	errRefundNotExist = &simError{http.StatusNotFound, "RESOURCE_NOT_EXISTS", "退款单不存在", nil}
	errRefundUnpaid   = &simError{http.StatusBadRequest, "INVALID_REQUEST", "订单未支付，不能退款", nil}
	errRefundTotal    = &simError{http.StatusBadRequest, "INVALID_REQUEST", "订单金额amount.total与原订单金额不一致", nil}
	errRefundTooMuch  = &simError{http.StatusBadRequest, "INVALID_REQUEST", "申请退款金额超过订单可退金额", nil}
	errRefundChanged  = &simError{http.StatusBadRequest, "INVALID_REQUEST", "同一商户退款单号的请求参数与之前不一致", nil}
)

var outRefundNoRE = regexp.MustCompile(`^[0-9A-Za-z_\-|*@]{1,64}$`)

type refundRequest struct {
	SubMchID      string `json:"sub_mchid"`
	TransactionID string `json:"transaction_id"`
	OutTradeNo    string `json:"out_trade_no"`
	OutRefundNo   string `json:"out_refund_no"`
	Reason        string `json:"reason"`
	NotifyURL     string `json:"notify_url"`
	Amount        *struct {
		Refund   *int64 `json:"refund"`
		Total    *int64 `json:"total"`
		Currency string `json:"currency"`
	} `json:"amount"`
}

// serveRefund answers POST /v3/refund/domestic/refunds.
func (od *orders) serveRefund(w http.ResponseWriter, r *http.Request) {
	caller := MerchantIDFrom(r.Context())
	body := bodyOf(r)
	var req refundRequest
	if serr := decodeObject(body, &req); serr != nil {
		writeSimError(w, serr)
		return
	}
	serr := func() *simError {
		switch {
		case req.OutRefundNo == "":
			return paramError("/out_refund_no", "缺少必填参数out_refund_no", nil)
		case !outRefundNoRE.MatchString(req.OutRefundNo):
			return paramError("/out_refund_no", "out_refund_no应为1至64位数字、大小写字母或_-|*@", req.OutRefundNo)
		case req.TransactionID == "" && req.OutTradeNo == "":
			return paramError("/out_trade_no", "transaction_id与out_trade_no必填其一", nil)
		case utf8.RuneCountInString(req.Reason) > 80:
			return paramError("/reason", "reason长度超过80", nil)
		case req.Amount == nil || req.Amount.Refund == nil:
			return paramError("/amount/refund", "缺少必填参数amount.refund", nil)
		case req.Amount.Total == nil:
			return paramError("/amount/total", "缺少必填参数amount.total", nil)
		case *req.Amount.Refund <= 0:
			return paramError("/amount/refund", "退款金额必须大于0", *req.Amount.Refund)
		case *req.Amount.Total <= 0:
			return paramError("/amount/total", "原订单金额必须大于0", *req.Amount.Total)
		case req.Amount.Currency != "CNY":
			return paramError("/amount/currency", "Currency code is invalid", req.Amount.Currency)
		}
		if req.NotifyURL != "" {
			return checkNotifyURL("/notify_url", req.NotifyURL)
		}
		return nil
	}()
	if serr != nil {
		writeSimError(w, serr)
		return
	}
	owner := caller
	if req.SubMchID != "" {
		owner = req.SubMchID
	}
	out, serr := od.createRefund(caller, owner, &req, fingerprint("refund", body))
	if serr != nil {
		writeSimError(w, serr)
		return
	}
	writeJSON(w, out)
}

// createRefund checks the order and creates a PROCESSING refund, or
// returns the refund already created with the same parameters.
func (od *orders) createRefund(caller, owner string, req *refundRequest, fp string) (map[string]any, *simError) {
	od.mu.Lock()
	defer od.mu.Unlock()
	rk := refundKey(owner, req.OutRefundNo)
	if old := od.refunds[rk]; old != nil {
		if old.Fingerprint != fp || old.Merchant != caller {
			return nil, errRefundChanged
		}
		return old.json(od.byKey[old.OrderKey]), nil
	}
	var o *order
	if req.TransactionID != "" {
		o = od.byKey[od.byTx[req.TransactionID]]
	} else {
		o = od.byKey[orderKey(owner, req.OutTradeNo)]
	}
	if o == nil || o.Owner != owner || o.Merchant != caller || (req.OutTradeNo != "" && o.OutTradeNo != req.OutTradeNo) {
		return nil, errRefundNoOrder
	}
	if o.State != stateSuccess && o.State != stateRefund {
		return nil, errRefundUnpaid
	}
	if *req.Amount.Total != o.Total {
		return nil, errRefundTotal
	}
	if o.Refunded+*req.Amount.Refund > o.Total {
		return nil, errRefundTooMuch
	}
	outcome := od.outcome
	if outcome == "" {
		outcome = refundSuccess
	}
	rf := &refund{
		Owner: owner, Merchant: caller, OrderKey: orderKey(o.Owner, o.OutTradeNo),
		OutRefundNo: req.OutRefundNo, RefundID: "50" + randomDigits(27), Reason: req.Reason,
		NotifyURL: req.NotifyURL, Refund: *req.Amount.Refund, Status: refundProcessing, Outcome: outcome,
		CreateTime: od.clock.now(), Fingerprint: fp, TransactionID: o.TransactionID, OutTradeNo: o.OutTradeNo,
	}
	od.refunds[rk] = rf
	o.Refunded += rf.Refund
	o.State = stateRefund
	od.saveLocked()
	od.life.goOwned(func(ctx context.Context) { od.settleRefund(ctx, rk) })
	return rf.json(o), nil
}

// settleRefund ends the refund rk after the refund delay and sends its
// REFUND.* notification.
func (od *orders) settleRefund(ctx context.Context, rk string) {
	if !od.clock.sleep(ctx, od.refundIn, nil) {
		return
	}
	od.mu.Lock()
	rf := od.refunds[rk]
	if rf == nil || rf.Status != refundProcessing || rf.Outcome == refundProcessing {
		od.mu.Unlock()
		return
	}
	o := od.byKey[rf.OrderKey]
	rf.Status = rf.Outcome
	switch rf.Status {
	case refundSuccess:
		rf.SuccessTime = od.clock.now()
	case refundClosed:
		o.Refunded -= rf.Refund
	}
	url := rf.NotifyURL
	if url == "" {
		url = o.NotifyURL // WeChat Pay would use the address set on its merchant platform
	}
	n := notice{
		eventType: "REFUND." + rf.Status, merchant: rf.Merchant, outTradeNo: rf.OutTradeNo,
		outRefundNo: rf.OutRefundNo, url: url, resource: rf.notificationJSON(o),
	}
	od.saveLocked()
	od.mu.Unlock()
	od.delivery.send(n)
}

func (rf *refund) amountJSON(o *order) map[string]any {
	return map[string]any{
		"total": o.Total, "refund": rf.Refund, "payer_total": o.Total, "payer_refund": rf.Refund,
		"settlement_total": o.Total, "settlement_refund": rf.Refund, "discount_refund": 0,
		"currency": o.Currency, "refund_fee": 0,
	}
}

// json is the refund as the refund routes answer it.
func (rf *refund) json(o *order) map[string]any {
	m := map[string]any{
		"refund_id": rf.RefundID, "out_refund_no": rf.OutRefundNo,
		"transaction_id": rf.TransactionID, "out_trade_no": rf.OutTradeNo,
		"channel": "ORIGINAL", "user_received_account": "支付用户零钱",
		"create_time": rf.CreateTime.In(beijing).Format(time.RFC3339),
		"status":      rf.Status, "funds_account": "AVAILABLE",
		"amount": rf.amountJSON(o),
	}
	if !rf.SuccessTime.IsZero() {
		m["success_time"] = rf.SuccessTime.In(beijing).Format(time.RFC3339)
	}
	if o.Partner {
		m["sub_mchid"] = o.Owner
	}
	return m
}

// notificationJSON is the resource of the refund's REFUND.* notification.
func (rf *refund) notificationJSON(o *order) map[string]any {
	m := map[string]any{
		"out_trade_no": rf.OutTradeNo, "transaction_id": rf.TransactionID,
		"out_refund_no": rf.OutRefundNo, "refund_id": rf.RefundID, "refund_status": rf.Status,
		"user_received_account": "支付用户零钱",
		"amount":                map[string]any{"total": o.Total, "refund": rf.Refund, "payer_total": o.Total, "payer_refund": rf.Refund},
	}
	if !rf.SuccessTime.IsZero() {
		m["success_time"] = rf.SuccessTime.In(beijing).Format(time.RFC3339)
	}
	if o.Partner {
		m["sp_mchid"], m["sub_mchid"] = o.Merchant, o.Owner
	} else {
		m["mchid"] = o.Owner
	}
	return m
}

// serveRefundQuery answers GET /v3/refund/domestic/refunds/{no}.
func (od *orders) serveRefundQuery(w http.ResponseWriter, r *http.Request) {
	caller := MerchantIDFrom(r.Context())
	owner := caller
	if sub := r.URL.Query().Get("sub_mchid"); sub != "" {
		owner = sub
	}
	od.mu.Lock()
	var out map[string]any
	if rf := od.refunds[refundKey(owner, r.PathValue("no"))]; rf != nil && rf.Merchant == caller {
		out = rf.json(od.byKey[rf.OrderKey])
	}
	od.mu.Unlock()
	if out == nil {
		writeSimError(w, errRefundNotExist)
		return
	}
	writeJSON(w, out)
}

// SetRefundOutcome sets the status that refunds created from now on end
// in: "SUCCESS" (the default; also ""), "ABNORMAL" or "CLOSED", each with
// its REFUND.* notification, or "PROCESSING", which they then never
// leave. It panics on any other status.
func (s *Server) SetRefundOutcome(status string) {
	if status != "" && !validOutcome(status) {
		panic("wechatpaytest: SetRefundOutcome: unknown status " + status)
	}
	s.orders.setRefundOutcome(status)
}
