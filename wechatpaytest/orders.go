package wechatpaytest

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Orders and refunds with their real state. Facts about fields, states and
// error codes come from WeChat Pay's pages for JSAPI/Native/App/H5
// prepay, query, close and refund (pay.weixin.qq.com/doc/v3/merchant/
// 4012525167, 4013070356, 4012556398; wiki/doc/apiv3/apis/
// chapter3_4_3.shtml for the error table) and from docs/protocol.md §12.

// Trade states of an order (trade_state).
const (
	stateNotPay     = "NOTPAY"
	stateSuccess    = "SUCCESS"
	stateRefund     = "REFUND"
	stateClosed     = "CLOSED"
	stateUserPaying = "USERPAYING"
	statePayError   = "PAYERROR"
)

// order is one simulated order. Its JSON form is what the state file keeps.
type order struct {
	Owner       string `json:"owner"`    // mchid, or sub_mchid for a service provider's order
	Merchant    string `json:"merchant"` // the authenticated merchant: mchid or sp_mchid
	Partner     bool   `json:"partner,omitempty"`
	AppID       string `json:"appid,omitempty"`     // appid or sp_appid
	SubAppID    string `json:"sub_appid,omitempty"` // partner only
	TradeType   string `json:"trade_type"`          // JSAPI, APP, MWEB, NATIVE
	OutTradeNo  string `json:"out_trade_no"`
	Description string `json:"description"`
	Attach      string `json:"attach,omitempty"`
	NotifyURL   string `json:"notify_url"`
	TimeExpire  string `json:"time_expire,omitempty"`
	Total       int64  `json:"total"`
	Currency    string `json:"currency"`
	OpenID      string `json:"openid,omitempty"`     // payer.openid or payer.sp_openid
	SubOpenID   string `json:"sub_openid,omitempty"` // partner only
	Fingerprint string `json:"fingerprint"`          // of the placing request's parameters

	PrepayID      string    `json:"prepay_id"`
	State         string    `json:"trade_state"`
	TransactionID string    `json:"transaction_id,omitempty"`
	CreateTime    time.Time `json:"create_time"`
	SuccessTime   time.Time `json:"success_time,omitzero"`
	Refunded      int64     `json:"refunded,omitempty"`       // fen reserved by refunds not CLOSED
	ProfitSharing bool      `json:"profit_sharing,omitempty"` // settle_info.profit_sharing: shared with profitsharing.go
}

// orderKey identifies an order: out_trade_no is unique per merchant.
func orderKey(owner, outTradeNo string) string { return owner + "/" + outTradeNo }

// orders is the simulator's orders and refunds (refunds.go), kept in
// memory and, with WithStateFile, in a file (state.go). A payment or a
// settled refund hands its notification to delivery.
type orders struct {
	clock     *simClock
	life      *lifecycle
	delivery  *delivery
	url       string // the server's base URL, where code_url and h5_url lead
	statePath string
	refundIn  time.Duration // WithRefundDelay

	mu           sync.Mutex
	byKey        map[string]*order  // guarded by mu; by orderKey
	byTx         map[string]string  // guarded by mu; transaction_id → orderKey
	byPay        map[string]string  // guarded by mu; prepay_id → orderKey
	refunds      map[string]*refund // guarded by mu; by refundKey
	outcome      string             // guarded by mu; status new refunds end in, "" means SUCCESS
	savedDefault *savedMerchant     // guarded by mu; the default merchant, for the state file
	saveErr      error              // guarded by mu; of the last state file write
}

func newOrders(o *options, clock *simClock, life *lifecycle, d *delivery, url string) *orders {
	return &orders{
		clock: clock, life: life, delivery: d, url: url, statePath: o.statePath, refundIn: o.refundDelay,
		byKey: make(map[string]*order), byTx: make(map[string]string), byPay: make(map[string]string),
		refunds: make(map[string]*refund),
	}
}

// routes are the order routes, direct and service provider.
func (od *orders) routes() []route {
	return []route{
		{"POST /v3/pay/transactions/{kind}", failable, od.servePrepay(false)},
		{"POST /v3/pay/partner/transactions/{kind}", failable, od.servePrepay(true)},
		{"GET /v3/pay/transactions/id/{id}", failable, od.serveQuery(false, true)},
		{"GET /v3/pay/transactions/out-trade-no/{no}", failable, od.serveQuery(false, false)},
		{"GET /v3/pay/partner/transactions/id/{id}", failable, od.serveQuery(true, true)},
		{"GET /v3/pay/partner/transactions/out-trade-no/{no}", failable, od.serveQuery(true, false)},
		{"POST /v3/pay/transactions/out-trade-no/{no}/close", failable, od.serveClose(false)},
		{"POST /v3/pay/partner/transactions/out-trade-no/{no}/close", failable, od.serveClose(true)},
	}
}

// lookup returns a copy of the order out_trade_no of owner (the mchid,
// or the sub_mchid of a service provider's order). Product parts use it
// to check the order a request names.
func (od *orders) lookup(owner, outTradeNo string) (order, bool) {
	od.mu.Lock()
	defer od.mu.Unlock()
	if o := od.byKey[orderKey(owner, outTradeNo)]; o != nil {
		return *o, true
	}
	return order{}, false
}

// lookupTransaction returns a copy of the order with transaction_id id.
func (od *orders) lookupTransaction(id string) (order, bool) {
	od.mu.Lock()
	defer od.mu.Unlock()
	if o := od.byKey[od.byTx[id]]; o != nil {
		return *o, true
	}
	return order{}, false
}

// lookupPrepay returns a copy of the order with prepay_id id.
func (od *orders) lookupPrepay(id string) (order, bool) {
	od.mu.Lock()
	defer od.mu.Unlock()
	if k, ok := od.byPay[id]; ok {
		return *od.byKey[k], true
	}
	return order{}, false
}

var (
	errOrderNotExist = &simError{http.StatusNotFound, "ORDER_NOT_EXIST", "订单不存在", nil}
	errOrderPaid     = &simError{http.StatusForbidden, "ORDERPAID", "该订单已支付", nil}
	errOrderClosed   = &simError{http.StatusBadRequest, "ORDER_CLOSED", "订单已关闭", nil}
	errOutTradeNo    = &simError{http.StatusForbidden, "OUT_TRADE_NO_USED", "商户订单号重复", nil}
	errUserPaying    = &simError{http.StatusAccepted, "USERPAYING", "用户支付中，需要输入密码", nil}
)

// place stores o, or answers as WeChat Pay does for an out_trade_no
// already used. It returns the order now stored.
func (od *orders) place(o *order) (*order, *simError) {
	od.mu.Lock()
	defer od.mu.Unlock()
	k := orderKey(o.Owner, o.OutTradeNo)
	if old := od.byKey[k]; old != nil {
		switch old.State {
		case stateSuccess, stateRefund:
			return nil, errOrderPaid
		case stateClosed:
			return nil, errOrderClosed
		}
		if old.Fingerprint != o.Fingerprint || old.Merchant != o.Merchant {
			return nil, errOutTradeNo
		}
		c := *old
		return &c, nil
	}
	now := od.clock.now()
	o.PrepayID = "wx" + now.In(beijing).Format("02150405") + strings.ToLower(randomText(24))
	o.State = stateNotPay
	o.CreateTime = now
	od.byKey[k] = o
	od.byPay[o.PrepayID] = k
	od.saveLocked()
	c := *o
	return &c, nil
}

// servePrepay answers the prepay routes.
func (od *orders) servePrepay(partner bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		kind := r.PathValue("kind")
		if tradeTypes[kind] == "" {
			writeSimError(w, &simError{http.StatusNotFound, "NOT_FOUND", "请求的资源不存在", nil})
			return
		}
		o, serr := validatePrepay(MerchantIDFrom(r.Context()), kind, partner, bodyOf(r))
		if serr == nil {
			o, serr = od.place(o)
		}
		if serr != nil {
			writeSimError(w, serr)
			return
		}
		switch kind {
		case "native":
			writeJSON(w, map[string]string{"code_url": od.cashierURL(o.PrepayID)})
		case "h5":
			writeJSON(w, map[string]string{"h5_url": od.cashierURL(o.PrepayID)})
		default:
			writeJSON(w, map[string]string{"prepay_id": o.PrepayID})
		}
	}
}

// cashierURL is where a payer pays the order with prepayID: the order's
// code_url and h5_url.
func (od *orders) cashierURL(prepayID string) string {
	return od.url + CashierPath + "?prepay_id=" + url.QueryEscape(prepayID)
}

// transactionJSON is an order as the query routes and TRANSACTION.*
// notifications show it.
func (o *order) transactionJSON() map[string]any {
	m := map[string]any{
		"out_trade_no":     o.OutTradeNo,
		"trade_type":       o.TradeType,
		"trade_state":      o.State,
		"trade_state_desc": tradeStateDesc[o.State],
		"attach":           o.Attach,
	}
	if o.Partner {
		m["sp_appid"], m["sp_mchid"], m["sub_mchid"] = o.AppID, o.Merchant, o.Owner
		if o.SubAppID != "" {
			m["sub_appid"] = o.SubAppID
		}
	} else {
		m["appid"], m["mchid"] = o.AppID, o.Owner
	}
	amount := map[string]any{"total": o.Total, "currency": o.Currency}
	if o.TransactionID != "" {
		m["transaction_id"] = o.TransactionID
		m["bank_type"] = "OTHERS"
		m["success_time"] = o.SuccessTime.In(beijing).Format(time.RFC3339)
		amount["payer_total"], amount["payer_currency"] = o.Total, o.Currency
		m["payer"] = o.payerJSON()
	}
	m["amount"] = amount
	return m
}

func (o *order) payerJSON() map[string]any {
	payer := map[string]any{}
	if o.Partner {
		if o.OpenID != "" {
			payer["sp_openid"] = o.OpenID
		}
		if o.SubOpenID != "" {
			payer["sub_openid"] = o.SubOpenID
		}
	} else {
		payer["openid"] = o.OpenID
	}
	return payer
}

var tradeStateDesc = map[string]string{
	stateNotPay:     "订单未支付",
	stateSuccess:    "支付成功",
	stateRefund:     "转入退款",
	stateClosed:     "订单已关闭",
	stateUserPaying: "用户支付中，请稍后查询",
	statePayError:   "支付失败，请重新下单支付",
}

// queryCaller checks the merchant query parameters of a query or close
// and returns the owner of the order asked for.
func queryCaller(caller string, partner bool, get func(string) string) (string, *simError) {
	if partner {
		sp, sub := get("sp_mchid"), get("sub_mchid")
		if sp == "" {
			return "", paramError("sp_mchid", "缺少必填参数sp_mchid", nil)
		}
		if sub == "" {
			return "", paramError("sub_mchid", "缺少必填参数sub_mchid", nil)
		}
		if sp != caller {
			return "", paramError("sp_mchid", "sp_mchid与请求签名的商户号不一致", sp)
		}
		return sub, nil
	}
	id := get("mchid")
	if id == "" {
		return "", paramError("mchid", "缺少必填参数mchid", nil)
	}
	if id != caller {
		return "", paramError("mchid", "mchid与请求签名的商户号不一致", id)
	}
	return id, nil
}

// serveQuery answers the query routes, by transaction_id (byID) or by
// out_trade_no.
func (od *orders) serveQuery(partner, byID bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		caller := MerchantIDFrom(r.Context())
		owner, serr := queryCaller(caller, partner, r.URL.Query().Get)
		if serr != nil {
			writeSimError(w, serr)
			return
		}
		var o order
		var ok bool
		if byID {
			o, ok = od.lookupTransaction(r.PathValue("id"))
		} else {
			o, ok = od.lookup(owner, r.PathValue("no"))
		}
		if !ok || o.Owner != owner || o.Merchant != caller || o.Partner != partner {
			writeSimError(w, errOrderNotExist)
			return
		}
		writeJSON(w, o.transactionJSON())
	}
}

// serveClose answers the close routes: NOTPAY (or PAYERROR) becomes CLOSED.
func (od *orders) serveClose(partner bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		caller := MerchantIDFrom(r.Context())
		var req map[string]any
		if serr := decodeObject(bodyOf(r), &req); serr != nil {
			writeSimError(w, serr)
			return
		}
		owner, serr := queryCaller(caller, partner, func(k string) string {
			v, _ := req[k].(string)
			return v
		})
		if serr != nil {
			if d, ok := serr.detail.(fieldDetail); ok { // body fields, not query
				d.Field, d.Location = "/"+d.Field, "body"
				serr.detail = d
			}
			writeSimError(w, serr)
			return
		}
		if serr := od.close(caller, owner, r.PathValue("no"), partner); serr != nil {
			writeSimError(w, serr)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// close closes an unpaid order.
func (od *orders) close(caller, owner, outTradeNo string, partner bool) *simError {
	od.mu.Lock()
	defer od.mu.Unlock()
	o := od.byKey[orderKey(owner, outTradeNo)]
	if o != nil && (o.Merchant != caller || o.Partner != partner) {
		o = nil
	}
	switch {
	case o == nil:
		return errOrderNotExist
	case o.State == stateSuccess || o.State == stateRefund:
		return errOrderPaid
	case o.State == stateClosed:
		return errOrderClosed
	case o.State == stateUserPaying:
		return errUserPaying
	}
	o.State = stateClosed
	od.saveLocked()
	return nil
}

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

// pay ends a payment of the order with key k; a non-empty caller must be
// the merchant that placed it. A success is notified.
func (od *orders) pay(k, caller string, result PayResult) (map[string]any, *simError) {
	od.mu.Lock()
	o := od.byKey[k]
	if o == nil || (caller != "" && o.Merchant != caller) {
		od.mu.Unlock()
		return nil, errOrderNotExist
	}
	switch o.State {
	case stateSuccess, stateRefund:
		od.mu.Unlock()
		return nil, errOrderPaid
	case stateClosed, stateRevoked:
		od.mu.Unlock()
		return nil, errOrderClosed
	}
	switch result {
	case PaySuccess:
		o.State = stateSuccess
		o.TransactionID = "4200" + randomDigits(24)
		o.SuccessTime = od.clock.now()
		if o.OpenID == "" && o.SubOpenID == "" {
			o.OpenID = "oSandbox" + randomText(20)
		}
		od.byTx[o.TransactionID] = k
	case PayFail:
		o.State = statePayError
	default:
		o.State = stateUserPaying
	}
	tx := o.transactionJSON()
	n := notice{eventType: "TRANSACTION.SUCCESS", merchant: o.Merchant, outTradeNo: o.OutTradeNo, url: o.NotifyURL, resource: tx}
	od.saveLocked()
	od.mu.Unlock()
	if result == PaySuccess && n.url != "" { // payment codes have no notification
		od.delivery.send(n)
	}
	return tx, nil
}

// Pay pays the order outTradeNo of merchant mchid as the payer would on
// WeChat Pay's cashier; mchid is the order's mchid, or its sub_mchid for a
// service provider's order. It has the same effect as the buttons of the
// cashier page and the command "wechatpay pay". The error, if any, is
// WeChat Pay's answer: ORDER_NOT_EXIST, ORDERPAID or ORDER_CLOSED.
func (s *Server) Pay(mchid, outTradeNo string, result PayResult) error {
	if _, err := s.orders.pay(orderKey(mchid, outTradeNo), "", result); err != nil {
		return err
	}
	return nil
}
