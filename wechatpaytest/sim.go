package wechatpaytest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// The simulator: orders and refunds with state, kept in sim (guarded by
// sim.mu). Facts about fields, states and error codes come from WeChat
// Pay's pages for JSAPI/Native/App/H5 prepay, query, close and refund
// (pay.weixin.qq.com/doc/v3/merchant/4012525167, 4013070356, 4012556398;
// wiki/doc/apiv3/apis/chapter3_4_3.shtml for the error table) and from
// docs/protocol.md §12.

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

// key identifies an order: out_trade_no is unique per merchant.
func orderKey(owner, outTradeNo string) string { return owner + "/" + outTradeNo }

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

// sim is the simulator's state.
type sim struct {
	mu      sync.Mutex
	orders  map[string]*order  // by orderKey
	byTx    map[string]string  // transaction_id → orderKey
	byPay   map[string]string  // prepay_id → orderKey
	refunds map[string]*refund // by refundKey
	faults  map[string][]RouteFault
	outcome string // status new refunds end in; "" means SUCCESS
	log     []Delivery
	saveErr error // of the last state file write
}

func (x *sim) init() {
	x.orders = make(map[string]*order)
	x.byTx = make(map[string]string)
	x.byPay = make(map[string]string)
	x.refunds = make(map[string]*refund)
	x.faults = make(map[string][]RouteFault)
}

// simError is a WeChat Pay error answer: status, code, message and an
// optional detail.
type simError struct {
	status        int
	code, message string
	detail        any
}

func (e *simError) Error() string {
	return fmt.Sprintf("wechatpaytest: %d %s: %s", e.status, e.code, e.message)
}

// fieldDetail is the detail WeChat Pay gives with a PARAM_ERROR about one
// field (docs/protocol.md §8).
type fieldDetail struct {
	Field    string `json:"field"`
	Value    any    `json:"value,omitempty"`
	Issue    string `json:"issue"`
	Location string `json:"location"`
}

func paramError(field, issue string, value any) *simError {
	loc := "body"
	if !strings.HasPrefix(field, "/") {
		loc = "query"
	}
	return &simError{http.StatusBadRequest, "PARAM_ERROR", "参数错误: " + issue,
		fieldDetail{Field: field, Value: value, Issue: issue, Location: loc}}
}

var (
	errOrderNotExist = &simError{http.StatusNotFound, "ORDER_NOT_EXIST", "订单不存在", nil}
	errOrderPaid     = &simError{http.StatusForbidden, "ORDERPAID", "该订单已支付", nil}
	errOrderClosed   = &simError{http.StatusBadRequest, "ORDER_CLOSED", "订单已关闭", nil}
	errOutTradeNo    = &simError{http.StatusForbidden, "OUT_TRADE_NO_USED", "商户订单号重复", nil}
	errUserPaying    = &simError{http.StatusAccepted, "USERPAYING", "用户支付中，需要输入密码", nil}
)

// prepayRequest is the body of a prepay call, direct and partner forms.
type prepayRequest struct {
	AppID       string `json:"appid"`
	MchID       string `json:"mchid"`
	SpAppID     string `json:"sp_appid"`
	SpMchID     string `json:"sp_mchid"`
	SubAppID    string `json:"sub_appid"`
	SubMchID    string `json:"sub_mchid"`
	Description string `json:"description"`
	OutTradeNo  string `json:"out_trade_no"`
	TimeExpire  string `json:"time_expire"`
	Attach      string `json:"attach"`
	NotifyURL   string `json:"notify_url"`
	Amount      *struct {
		Total    *int64 `json:"total"`
		Currency string `json:"currency"`
	} `json:"amount"`
	Payer *struct {
		OpenID    string `json:"openid"`
		SpOpenID  string `json:"sp_openid"`
		SubOpenID string `json:"sub_openid"`
	} `json:"payer"`
	SettleInfo *struct {
		ProfitSharing bool `json:"profit_sharing"`
	} `json:"settle_info"`
	SceneInfo *struct {
		PayerClientIP string `json:"payer_client_ip"`
		H5Info        *struct {
			Type string `json:"type"`
		} `json:"h5_info"`
	} `json:"scene_info"`
}

var outTradeNoRE = regexp.MustCompile(`^[0-9A-Za-z_\-|*]{6,32}$`)

// tradeTypes maps the last path element of a prepay route to trade_type.
var tradeTypes = map[string]string{"jsapi": "JSAPI", "app": "APP", "h5": "MWEB", "native": "NATIVE"}

// decodeObject unmarshals a JSON object body into v.
func decodeObject(body []byte, v any) *simError {
	if t := bytes.TrimSpace(body); len(t) == 0 || t[0] != '{' {
		return &simError{http.StatusBadRequest, "PARAM_ERROR", "请求体必须是JSON对象", nil}
	}
	if err := json.Unmarshal(body, v); err != nil {
		msg := "请求体不是合法的JSON"
		var te *json.UnmarshalTypeError
		if ok := asTypeError(err, &te); ok {
			return paramError("/"+strings.ReplaceAll(te.Field, ".", "/"), "类型错误，应为"+te.Type.String(), nil)
		}
		return &simError{http.StatusBadRequest, "PARAM_ERROR", msg, nil}
	}
	return nil
}

func asTypeError(err error, te **json.UnmarshalTypeError) bool {
	t, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*te = t
	}
	return ok
}

// validatePrepay checks a prepay request as WeChat Pay does and returns the
// order it would create. caller is the authenticated merchant.
func validatePrepay(caller, kind string, partner bool, body []byte) (*order, *simError) {
	var req prepayRequest
	if err := decodeObject(body, &req); err != nil {
		return nil, err
	}
	o := &order{Merchant: caller, Partner: partner, TradeType: tradeTypes[kind], Currency: "CNY"}
	required := func(field, v string) *simError {
		if v == "" {
			return paramError("/"+field, "缺少必填参数"+field, nil)
		}
		if utf8.RuneCountInString(v) > 32 {
			return paramError("/"+field, field+"长度超过32", v)
		}
		return nil
	}
	if partner {
		for _, f := range []struct{ name, v string }{{"sp_appid", req.SpAppID}, {"sp_mchid", req.SpMchID}, {"sub_mchid", req.SubMchID}} {
			if err := required(f.name, f.v); err != nil {
				return nil, err
			}
		}
		if req.SpMchID != caller {
			return nil, paramError("/sp_mchid", "sp_mchid与请求签名的商户号不一致", req.SpMchID)
		}
		o.Owner, o.AppID, o.SubAppID = req.SubMchID, req.SpAppID, req.SubAppID
	} else {
		for _, f := range []struct{ name, v string }{{"appid", req.AppID}, {"mchid", req.MchID}} {
			if err := required(f.name, f.v); err != nil {
				return nil, err
			}
		}
		if req.MchID != caller {
			return nil, paramError("/mchid", "mchid与请求签名的商户号不一致", req.MchID)
		}
		o.Owner, o.AppID = req.MchID, req.AppID
	}
	if req.Description == "" {
		return nil, paramError("/description", "缺少必填参数description", nil)
	}
	if utf8.RuneCountInString(req.Description) > 127 || !utf8.ValidString(req.Description) {
		return nil, paramError("/description", "description长度超过127", nil)
	}
	if req.OutTradeNo == "" {
		return nil, paramError("/out_trade_no", "缺少必填参数out_trade_no", nil)
	}
	if !outTradeNoRE.MatchString(req.OutTradeNo) {
		return nil, paramError("/out_trade_no", "out_trade_no应为6至32位数字、大小写字母或_-|*", req.OutTradeNo)
	}
	if req.TimeExpire != "" {
		if _, err := time.Parse(time.RFC3339, req.TimeExpire); err != nil {
			return nil, paramError("/time_expire", "time_expire应为RFC 3339格式", req.TimeExpire)
		}
	}
	if utf8.RuneCountInString(req.Attach) > 128 {
		return nil, paramError("/attach", "attach长度超过128", nil)
	}
	if req.NotifyURL == "" {
		return nil, paramError("/notify_url", "缺少必填参数notify_url", nil)
	}
	if err := checkNotifyURL("/notify_url", req.NotifyURL); err != nil {
		return nil, err
	}
	if req.Amount == nil || req.Amount.Total == nil {
		return nil, paramError("/amount/total", "缺少必填参数amount.total", nil)
	}
	if *req.Amount.Total <= 0 {
		return nil, paramError("/amount/total", "订单金额必须大于0", *req.Amount.Total)
	}
	if c := req.Amount.Currency; c != "" && c != "CNY" {
		return nil, paramError("/amount/currency", "Currency code is invalid", c)
	}
	switch kind {
	case "jsapi":
		if req.Payer == nil {
			return nil, paramError("/payer", "缺少必填参数payer", nil)
		}
		if partner {
			if req.Payer.SpOpenID == "" && req.Payer.SubOpenID == "" {
				return nil, paramError("/payer/sp_openid", "payer.sp_openid与payer.sub_openid必填其一", nil)
			}
			if req.Payer.SubOpenID != "" && req.SubAppID == "" {
				return nil, paramError("/sub_appid", "传入sub_openid时sub_appid必填", nil)
			}
			o.OpenID, o.SubOpenID = req.Payer.SpOpenID, req.Payer.SubOpenID
		} else {
			if req.Payer.OpenID == "" {
				return nil, paramError("/payer/openid", "缺少必填参数payer.openid", nil)
			}
			o.OpenID = req.Payer.OpenID
		}
	case "h5":
		if req.SceneInfo == nil || req.SceneInfo.PayerClientIP == "" {
			return nil, paramError("/scene_info/payer_client_ip", "缺少必填参数scene_info.payer_client_ip", nil)
		}
		if req.SceneInfo.H5Info == nil || req.SceneInfo.H5Info.Type == "" {
			return nil, paramError("/scene_info/h5_info/type", "缺少必填参数scene_info.h5_info.type", nil)
		}
	}
	o.Description, o.OutTradeNo, o.TimeExpire, o.Attach, o.NotifyURL = req.Description, req.OutTradeNo, req.TimeExpire, req.Attach, req.NotifyURL
	o.Total = *req.Amount.Total
	o.ProfitSharing = req.SettleInfo != nil && req.SettleInfo.ProfitSharing
	o.Fingerprint = fingerprint(o.TradeType, body)
	return o, nil
}

// checkNotifyURL accepts an absolute http or https URL without query. WeChat
// Pay requires https on the Internet; the sandbox also takes http, for a
// merchant server on the developer's machine.
func checkNotifyURL(field, s string) *simError {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return paramError(field, "notify_url应为http或https的绝对地址", s)
	}
	if u.RawQuery != "" || u.ForceQuery {
		return paramError(field, "notify_url不能携带参数", s)
	}
	if len(s) > 255 {
		return paramError(field, "notify_url长度超过255", nil)
	}
	return nil
}

// fingerprint identifies the parameters of a request, whatever the order
// of its JSON keys and its white space.
func fingerprint(kind string, body []byte) string {
	var v any
	json.Unmarshal(body, &v) // already decoded once
	canon, _ := json.Marshal(v)
	sum := sha256.Sum256(append([]byte(kind+"\n"), canon...))
	return hex.EncodeToString(sum[:])
}

// placeOrder stores o, or answers as WeChat Pay does for an out_trade_no
// already used. It returns the order now stored.
func (s *Server) placeOrder(o *order) (*order, *simError) {
	x := &s.sim
	x.mu.Lock()
	defer x.mu.Unlock()
	k := orderKey(o.Owner, o.OutTradeNo)
	if old := x.orders[k]; old != nil {
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
	o.PrepayID = "wx" + s.now().In(beijing).Format("02150405") + strings.ToLower(randomText(24))
	o.State = stateNotPay
	o.CreateTime = s.now()
	x.orders[k] = o
	x.byPay[o.PrepayID] = k
	s.saveLocked()
	c := *o
	return &c, nil
}

// servePrepay answers the prepay routes.
func (s *Server) servePrepay(partner bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		kind := r.PathValue("kind")
		if tradeTypes[kind] == "" {
			writeSimError(w, &simError{http.StatusNotFound, "NOT_FOUND", "请求的资源不存在", nil})
			return
		}
		o, serr := validatePrepay(MerchantIDFrom(r.Context()), kind, partner, bodyOf(r))
		if serr == nil {
			o, serr = s.placeOrder(o)
		}
		if serr != nil {
			writeSimError(w, serr)
			return
		}
		switch kind {
		case "native":
			writeJSON(w, map[string]string{"code_url": s.cashierURL(o.PrepayID)})
		case "h5":
			writeJSON(w, map[string]string{"h5_url": s.cashierURL(o.PrepayID)})
		default:
			writeJSON(w, map[string]string{"prepay_id": o.PrepayID})
		}
	}
}

// cashierURL is where a payer pays the order with prepayID: the order's
// code_url and h5_url.
func (s *Server) cashierURL(prepayID string) string {
	return s.URL + CashierPath + "?prepay_id=" + url.QueryEscape(prepayID)
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
		m["payer"] = payer
	}
	m["amount"] = amount
	return m
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
func (s *Server) serveQuery(partner, byID bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		caller := MerchantIDFrom(r.Context())
		owner, serr := queryCaller(caller, partner, r.URL.Query().Get)
		if serr != nil {
			writeSimError(w, serr)
			return
		}
		x := &s.sim
		x.mu.Lock()
		var o *order
		if byID {
			o = x.orders[x.byTx[r.PathValue("id")]]
		} else {
			o = x.orders[orderKey(owner, r.PathValue("no"))]
		}
		if o != nil && (o.Owner != owner || o.Merchant != caller || o.Partner != partner) {
			o = nil
		}
		var out map[string]any
		if o != nil {
			out = o.transactionJSON()
		}
		x.mu.Unlock()
		if out == nil {
			writeSimError(w, errOrderNotExist)
			return
		}
		writeJSON(w, out)
	}
}

// serveClose answers the close routes: NOTPAY (or PAYERROR) becomes CLOSED.
func (s *Server) serveClose(partner bool) http.HandlerFunc {
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
		x := &s.sim
		x.mu.Lock()
		o := x.orders[orderKey(owner, r.PathValue("no"))]
		if o != nil && (o.Merchant != caller || o.Partner != partner) {
			o = nil
		}
		switch {
		case o == nil:
			serr = errOrderNotExist
		case o.State == stateSuccess || o.State == stateRefund:
			serr = errOrderPaid
		case o.State == stateClosed:
			serr = errOrderClosed
		case o.State == stateUserPaying:
			serr = errUserPaying
		default:
			o.State = stateClosed
			s.saveLocked()
		}
		x.mu.Unlock()
		if serr != nil {
			writeSimError(w, serr)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// A RouteFault is a failure the sandbox gives on a built-in route on
// demand; see Server.FailRoute.
type RouteFault int

const (
	// RouteSystemError answers 500 SYSTEM_ERROR without doing anything.
	RouteSystemError RouteFault = iota + 1
	// RouteTimeout does what was asked (an order is placed, a refund
	// created) but never answers: the request hangs until the client gives
	// up or the server closes. The merchant must query to learn the
	// outcome.
	RouteTimeout
	// RouteFrequencyLimited answers 429 FREQUENCY_LIMITED without doing
	// anything.
	RouteFrequencyLimited
)

// FailRoute makes the next n calls of the built-in route pattern fail with
// f, after any failures already queued for it. pattern is one of the
// route patterns listed in the package documentation, such as
// "POST /v3/pay/transactions/{kind}" or "POST /v3/refund/domestic/refunds".
// It panics on a pattern that is not a built-in route or an unknown f.
func (s *Server) FailRoute(pattern string, f RouteFault, n int) {
	if !s.isSimRoute(pattern) {
		panic(fmt.Sprintf("wechatpaytest: FailRoute: %q is not a built-in route", pattern))
	}
	if f < RouteSystemError || f > RouteFrequencyLimited {
		panic(fmt.Sprintf("wechatpaytest: FailRoute: unknown fault %d", f))
	}
	x := &s.sim
	x.mu.Lock()
	defer x.mu.Unlock()
	for range n {
		x.faults[pattern] = append(x.faults[pattern], f)
	}
}

// takeFault pops the next fault queued for pattern, or returns 0.
func (s *Server) takeFault(pattern string) RouteFault {
	x := &s.sim
	x.mu.Lock()
	defer x.mu.Unlock()
	q := x.faults[pattern]
	if len(q) == 0 {
		return 0
	}
	x.faults[pattern] = q[1:]
	return q[0]
}

// writeSimError writes e as WeChat Pay's error JSON.
func writeSimError(w http.ResponseWriter, e *simError) {
	b, err := json.Marshal(errorBody{Code: e.code, Message: e.message, Detail: e.detail})
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	w.Write(b)
}

// bodyOf returns the body the sandbox already read (bounded) and
// authenticated; handlers get it as an in-memory reader.
func bodyOf(r *http.Request) []byte {
	var buf bytes.Buffer
	buf.ReadFrom(r.Body)
	return buf.Bytes()
}
