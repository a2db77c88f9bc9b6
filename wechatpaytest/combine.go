package wechatpaytest

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Combine orders (合单支付, docs/protocol.md §16): one payment over several
// sub-orders, each with its own trade_state, and one TRANSACTION.SUCCESS
// notification for the whole. Fields, states and error codes follow
// pay.weixin.qq.com/docs/merchant/products/combine-payment/apilist-jsapi.html,
// docs/merchant/apis/combine-payment/orders/query-order.html, close-order.html,
// payment-notice.html and wiki/doc/apiv3/apis/chapter5_1_12.shtml (errors).
// Combine orders live in memory only, also with WithStateFile.

// combineOrders is the simulator's part for combine orders. Its
// services are fixed by NewServer; its state is under its own lock.
type combineOrders struct {
	clock    *simClock
	delivery *delivery

	mu     sync.Mutex
	orders map[string]*combineOrder // guarded by mu; by orderKey(combine_mchid, combine_out_trade_no)
}

// routes are the combine order routes, for direct merchants and service
// providers alike.
func (x *combineOrders) routes() []route {
	return []route{
		{"POST /v3/combine-transactions/{kind}", failable, x.servePrepay},
		{"GET /v3/combine-transactions/out-trade-no/{no}", failable, x.serveQuery},
		{"POST /v3/combine-transactions/out-trade-no/{no}/close", failable, x.serveClose},
	}
}

// combineOrder is one combine order.
type combineOrder struct {
	merchant, appID, outTradeNo string
	tradeType, notifyURL        string
	deviceID, openID            string
	fingerprint, prepayID       string
	subs                        []*combineSub
}

// combineSub is one sub-order of a combine order.
type combineSub struct {
	mchID, subMchID, subAppID string
	outTradeNo, attach, descr string
	total                     int64
	currency, state           string
	transactionID             string
	successTime               time.Time
}

var (
	errCombineClose = &simError{http.StatusBadRequest, "INVALID_REQUEST", "输入的请求非法，请求关单的子单信息与下单时的子单信息不一致", nil}
	errCombineKind  = &simError{http.StatusNotFound, "NOT_FOUND", "请求的资源不存在", nil}
)

// combinePrepayRequest is the body of a combine prepay.
type combinePrepayRequest struct {
	CombineAppID      string `json:"combine_appid"`
	CombineMchID      string `json:"combine_mchid"`
	CombineOutTradeNo string `json:"combine_out_trade_no"`
	SceneInfo         *struct {
		DeviceID      string `json:"device_id"`
		PayerClientIP string `json:"payer_client_ip"`
		H5Info        *struct {
			Type string `json:"type"`
		} `json:"h5_info"`
	} `json:"scene_info"`
	SubOrders []struct {
		MchID       string `json:"mchid"`
		SubMchID    string `json:"sub_mchid"`
		SubAppID    string `json:"sub_appid"`
		Attach      string `json:"attach"`
		OutTradeNo  string `json:"out_trade_no"`
		Description string `json:"description"`
		Amount      *struct {
			TotalAmount *int64 `json:"total_amount"`
			Currency    string `json:"currency"`
		} `json:"amount"`
	} `json:"sub_orders"`
	CombinePayerInfo *struct {
		OpenID string `json:"openid"`
	} `json:"combine_payer_info"`
	TimeStart  string `json:"time_start"`
	TimeExpire string `json:"time_expire"`
	NotifyURL  string `json:"notify_url"`
}

// validateCombine checks a combine prepay as WeChat Pay does and returns
// the order it would create. caller is the authenticated merchant.
func validateCombine(caller, kind string, body []byte) (*combineOrder, *simError) {
	var req combinePrepayRequest
	if err := decodeObject(body, &req); err != nil {
		return nil, err
	}
	switch {
	case req.CombineAppID == "":
		return nil, paramError("/combine_appid", "缺少必填参数combine_appid", nil)
	case req.CombineMchID == "":
		return nil, paramError("/combine_mchid", "缺少必填参数combine_mchid", nil)
	case req.CombineMchID != caller:
		return nil, paramError("/combine_mchid", "combine_mchid与请求签名的商户号不一致", req.CombineMchID)
	case !outTradeNoRE.MatchString(req.CombineOutTradeNo):
		return nil, paramError("/combine_out_trade_no", "combine_out_trade_no应为6至32位数字、大小写字母或_-|*", req.CombineOutTradeNo)
	case req.NotifyURL == "":
		return nil, paramError("/notify_url", "缺少必填参数notify_url", nil)
	}
	if err := checkNotifyURL("/notify_url", req.NotifyURL); err != nil {
		return nil, err
	}
	for _, f := range []struct{ name, v string }{{"time_start", req.TimeStart}, {"time_expire", req.TimeExpire}} {
		if _, err := time.Parse(time.RFC3339, f.v); f.v != "" && err != nil {
			return nil, paramError("/"+f.name, f.name+"应为RFC 3339格式", f.v)
		}
	}
	partner := len(req.SubOrders) > 0 && req.SubOrders[0].SubMchID != ""
	lo, hi := 2, 10 // a direct merchant's combine order; a service provider's takes 1 to 50
	if partner {
		lo, hi = 1, 50
	}
	if n := len(req.SubOrders); n < lo || n > hi {
		return nil, paramError("/sub_orders", fmt.Sprintf("子单数量应为%d至%d笔", lo, hi), n)
	}
	o := &combineOrder{merchant: caller, appID: req.CombineAppID, outTradeNo: req.CombineOutTradeNo, tradeType: tradeTypes[kind], notifyURL: req.NotifyURL}
	seen := make(map[string]bool)
	for i, s := range req.SubOrders {
		at := fmt.Sprintf("/sub_orders/%d/", i)
		switch {
		case s.MchID == "":
			return nil, paramError(at+"mchid", "缺少必填参数mchid", nil)
		case partner && s.SubMchID == "":
			return nil, paramError(at+"sub_mchid", "缺少必填参数sub_mchid", nil)
		case s.Attach == "":
			return nil, paramError(at+"attach", "缺少必填参数attach", nil)
		case utf8.RuneCountInString(s.Attach) > 128:
			return nil, paramError(at+"attach", "attach长度超过128", nil)
		case s.Description == "":
			return nil, paramError(at+"description", "缺少必填参数description", nil)
		case utf8.RuneCountInString(s.Description) > 127:
			return nil, paramError(at+"description", "description长度超过127", nil)
		case !outTradeNoRE.MatchString(s.OutTradeNo):
			return nil, paramError(at+"out_trade_no", "out_trade_no应为6至32位数字、大小写字母或_-|*", s.OutTradeNo)
		case seen[s.MchID+"/"+s.OutTradeNo]:
			return nil, paramError(at+"out_trade_no", "子单商户订单号重复", s.OutTradeNo)
		case s.Amount == nil || s.Amount.TotalAmount == nil:
			return nil, paramError(at+"amount/total_amount", "缺少必填参数total_amount", nil)
		case *s.Amount.TotalAmount <= 0:
			return nil, paramError(at+"amount/total_amount", "子单金额必须大于0", *s.Amount.TotalAmount)
		case s.Amount.Currency != "" && s.Amount.Currency != "CNY":
			return nil, paramError(at+"amount/currency", "Currency code is invalid", s.Amount.Currency)
		}
		seen[s.MchID+"/"+s.OutTradeNo] = true
		o.subs = append(o.subs, &combineSub{mchID: s.MchID, subMchID: s.SubMchID, subAppID: s.SubAppID, outTradeNo: s.OutTradeNo,
			attach: s.Attach, descr: s.Description, total: *s.Amount.TotalAmount, currency: "CNY", state: stateNotPay})
	}
	switch kind {
	case "jsapi":
		if req.CombinePayerInfo == nil || req.CombinePayerInfo.OpenID == "" {
			return nil, paramError("/combine_payer_info/openid", "缺少必填参数combine_payer_info.openid", nil)
		}
		o.openID = req.CombinePayerInfo.OpenID
	case "h5":
		if req.SceneInfo == nil || req.SceneInfo.PayerClientIP == "" {
			return nil, paramError("/scene_info/payer_client_ip", "缺少必填参数scene_info.payer_client_ip", nil)
		}
		if req.SceneInfo.H5Info == nil || req.SceneInfo.H5Info.Type == "" {
			return nil, paramError("/scene_info/h5_info/type", "缺少必填参数scene_info.h5_info.type", nil)
		}
	}
	if req.SceneInfo != nil {
		o.deviceID = req.SceneInfo.DeviceID
	}
	o.fingerprint = fingerprint("combine/"+kind, body)
	return o, nil
}

// place stores o, or answers as WeChat Pay does for a number already
// used; it returns the prepay_id of the order stored.
func (x *combineOrders) place(o *combineOrder) (string, *simError) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.orders == nil {
		x.orders = make(map[string]*combineOrder)
	}
	k := orderKey(o.merchant, o.outTradeNo)
	if old := x.orders[k]; old != nil {
		switch {
		case old.anyState(stateSuccess, stateRefund):
			return "", errOrderPaid
		case old.anyState(stateClosed):
			return "", errOrderClosed
		case old.fingerprint != o.fingerprint:
			return "", errOutTradeNo
		}
		return old.prepayID, nil
	}
	o.prepayID = "wx" + x.clock.now().In(beijing).Format("02150405") + strings.ToLower(randomText(24))
	x.orders[k] = o
	return o.prepayID, nil
}

func (o *combineOrder) anyState(states ...string) bool {
	for _, s := range o.subs {
		for _, st := range states {
			if s.state == st {
				return true
			}
		}
	}
	return false
}

// json is the order as the combine query and its notification show it;
// x.mu is held.
func (o *combineOrder) json() map[string]any {
	subs := make([]map[string]any, 0, len(o.subs))
	for _, s := range o.subs {
		m := map[string]any{
			"mchid": s.mchID, "trade_type": o.tradeType, "trade_state": s.state, "attach": s.attach, "out_trade_no": s.outTradeNo,
		}
		if s.subMchID != "" {
			m["sub_mchid"] = s.subMchID
		}
		if s.subAppID != "" {
			m["sub_appid"] = s.subAppID
		}
		amount := map[string]any{"total_amount": s.total, "currency": s.currency}
		if s.transactionID != "" {
			m["transaction_id"], m["bank_type"] = s.transactionID, "OTHERS"
			m["success_time"] = s.successTime.In(beijing).Format(time.RFC3339)
			amount["payer_amount"], amount["payer_currency"] = s.total, s.currency
		}
		m["amount"] = amount
		subs = append(subs, m)
	}
	out := map[string]any{"combine_appid": o.appID, "combine_mchid": o.merchant, "combine_out_trade_no": o.outTradeNo, "sub_orders": subs}
	if o.deviceID != "" {
		out["scene_info"] = map[string]any{"device_id": o.deviceID}
	}
	if o.openID != "" && o.anyState(stateSuccess, stateRefund) {
		out["combine_payer_info"] = map[string]any{"openid": o.openID}
	}
	return out
}

// serveCombinePrepay answers POST /v3/combine-transactions/{kind}.
func (x *combineOrders) servePrepay(w http.ResponseWriter, r *http.Request) {
	kind := r.PathValue("kind")
	if tradeTypes[kind] == "" {
		writeSimError(w, errCombineKind)
		return
	}
	o, serr := validateCombine(MerchantIDFrom(r.Context()), kind, bodyOf(r))
	var prepayID string
	if serr == nil {
		prepayID, serr = x.place(o)
	}
	if serr != nil {
		writeSimError(w, serr)
		return
	}
	switch kind {
	case "native":
		writeJSON(w, map[string]string{"code_url": "weixin://wxpay/bizpayurl?pr=" + url.QueryEscape(prepayID)})
	case "h5":
		writeJSON(w, map[string]string{"h5_url": "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=" + url.QueryEscape(prepayID)})
	default:
		writeJSON(w, map[string]string{"prepay_id": prepayID})
	}
}

// serveCombineQuery answers GET /v3/combine-transactions/out-trade-no/{no}.
func (x *combineOrders) serveQuery(w http.ResponseWriter, r *http.Request) {
	x.mu.Lock()
	var out map[string]any
	if o := x.orders[orderKey(MerchantIDFrom(r.Context()), r.PathValue("no"))]; o != nil {
		out = o.json()
	}
	x.mu.Unlock()
	if out == nil {
		writeSimError(w, errOrderNotExist)
		return
	}
	writeJSON(w, out)
}

// serveCombineClose answers POST
// /v3/combine-transactions/out-trade-no/{no}/close: every sub-order named
// exactly as placed, none paid; the unpaid ones become CLOSED.
func (x *combineOrders) serveClose(w http.ResponseWriter, r *http.Request) {
	var req struct {
		CombineAppID string `json:"combine_appid"`
		SubOrders    []struct {
			MchID      string `json:"mchid"`
			OutTradeNo string `json:"out_trade_no"`
			SubMchID   string `json:"sub_mchid"`
		} `json:"sub_orders"`
	}
	if serr := decodeObject(bodyOf(r), &req); serr != nil {
		writeSimError(w, serr)
		return
	}
	if req.CombineAppID == "" {
		writeSimError(w, paramError("/combine_appid", "缺少必填参数combine_appid", nil))
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	o := x.orders[orderKey(MerchantIDFrom(r.Context()), r.PathValue("no"))]
	if o == nil {
		writeSimError(w, errOrderNotExist)
		return
	}
	named := make(map[string]bool)
	for _, s := range req.SubOrders {
		named[s.MchID+"/"+s.SubMchID+"/"+s.OutTradeNo] = true
	}
	match := req.CombineAppID == o.appID && len(named) == len(o.subs) && len(req.SubOrders) == len(o.subs)
	for _, s := range o.subs {
		match = match && named[s.mchID+"/"+s.subMchID+"/"+s.outTradeNo]
	}
	switch {
	case !match:
		writeSimError(w, errCombineClose)
		return
	case o.anyState(stateSuccess, stateRefund):
		writeSimError(w, errOrderPaid)
		return
	case o.anyState(stateUserPaying):
		writeSimError(w, errUserPaying)
		return
	}
	for _, s := range o.subs {
		s.state = stateClosed
	}
	w.WriteHeader(http.StatusNoContent)
}

// PayCombine pays the combine order combineOutTradeNo of merchant mchid
// (its combine_mchid) as the payer would: with PaySuccess every sub-order
// becomes SUCCESS with its own transaction_id, and the server delivers
// one TRANSACTION.SUCCESS notification for the whole order to its
// notify_url; PayFail makes every sub-order PAYERROR, PayUserPaying
// USERPAYING. The error, if any, is WeChat Pay's answer: ORDER_NOT_EXIST,
// ORDERPAID or ORDER_CLOSED. The control endpoint PayPath and "wechatpay
// pay" take a combine_out_trade_no too.
func (s *Server) PayCombine(mchid, combineOutTradeNo string, result PayResult) error {
	if _, err := s.combine.pay(mchid, combineOutTradeNo, result); err != nil {
		return err
	}
	return nil
}

// pay ends a payment of the combine order no of merchant mchid.
func (x *combineOrders) pay(mchid, no string, result PayResult) (map[string]any, *simError) {
	x.mu.Lock()
	o := x.orders[orderKey(mchid, no)]
	switch {
	case o == nil:
		x.mu.Unlock()
		return nil, errOrderNotExist
	case o.anyState(stateSuccess, stateRefund):
		x.mu.Unlock()
		return nil, errOrderPaid
	case o.anyState(stateClosed):
		x.mu.Unlock()
		return nil, errOrderClosed
	}
	now := x.clock.now()
	if result == PaySuccess && o.openID == "" {
		o.openID = "oSandbox" + randomText(20)
	}
	for _, sub := range o.subs {
		switch result {
		case PaySuccess:
			sub.state, sub.transactionID, sub.successTime = stateSuccess, "4200"+randomDigits(24), now
		case PayFail:
			sub.state = statePayError
		default:
			sub.state = stateUserPaying
		}
	}
	out := o.json()
	n := notice{eventType: "TRANSACTION.SUCCESS", merchant: o.merchant, outTradeNo: o.outTradeNo, url: o.notifyURL, resource: out}
	x.mu.Unlock()
	if result == PaySuccess {
		x.delivery.send(n)
	}
	return out, nil
}
