package payments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/wxpaykit/wechatpay/internal/apicall"
)

// Combine orders (合单支付, docs/protocol.md §16): one payment by one
// payer over several sub-orders, placed by the combine merchant
// (combine_mchid, the Client's MerchantID) for one app (combine_appid, the
// Client's AppID). A direct merchant's combine order has 2 to 10
// sub-orders, a service provider's 1 to 50; WeChat Pay checks that.
// Sources: pay.weixin.qq.com/docs/merchant/products/combine-payment/apilist-jsapi.html,
// apilist-native.html, doc/v3/merchant/4012556961 (H5),
// docs/merchant/apis/combine-payment/orders/query-order.html,
// close-order.html, payment-notice.html; wiki/doc/apiv3/apis/chapter5_1_3.shtml.

// EventCombineTransactionSuccess is the event type of the notification
// WeChat Pay posts to a combine order's notify_url once it is paid: the
// same TRANSACTION.SUCCESS as a plain order's, with a CombineTransaction
// as its resource. Give combine orders a notify_url of their own and
// register the handler on the Router behind it:
//
//	middleware.On(&rt, payments.EventCombineTransactionSuccess, func(ctx context.Context, n *middleware.Notification, c *payments.CombineTransaction) error {
//		return orders.MarkCombinePaid(ctx, c.CombineOutTradeNo, c.SubOrders)
//	})
//
// A plain order's notification that reaches such a handler does not
// decode (it has no combine_out_trade_no): it is answered 400, reaches the
// Router's ErrorHandler and is delivered again later, so a mixed-up
// notify_url shows instead of losing payments.
const EventCombineTransactionSuccess = "TRANSACTION.SUCCESS"

// CombinePrepayRequest is the body of a combine prepay, the same for
// JSAPI/mini-program, App, H5 and Native. The Client fills an empty
// CombineAppID with its AppID and an empty CombineMchID with its
// MerchantID, and an empty sub-order currency with CNY.
type CombinePrepayRequest struct {
	CombineAppID      string            `json:"combine_appid"`
	CombineMchID      string            `json:"combine_mchid"`
	CombineOutTradeNo string            `json:"combine_out_trade_no"` // 6–32 characters: digits, letters, _-|*
	SceneInfo         *CombineSceneInfo `json:"scene_info,omitempty"` // required for H5
	SubOrders         []CombineSubOrder `json:"sub_orders"`
	// CombinePayerInfo is the payer of a JSAPI/mini-program combine
	// order (required there).
	CombinePayerInfo *CombinePayer `json:"combine_payer_info,omitempty"`
	// TimeStart and TimeExpire, when set, are sent in whole seconds at
	// UTC+8 (RFC 3339).
	TimeStart  time.Time `json:"time_start,omitzero"`
	TimeExpire time.Time `json:"time_expire,omitzero"`
	NotifyURL  string    `json:"notify_url"` // https, without a query
}

// CombineSceneInfo is the scene of a combine order: the payer's IP and,
// for H5, the H5 scene.
type CombineSceneInfo struct {
	DeviceID      string  `json:"device_id,omitempty"`
	PayerClientIP string  `json:"payer_client_ip"`
	H5Info        *H5Info `json:"h5_info,omitempty"`
}

// CombineSubOrder is one sub-order of a combine prepay.
type CombineSubOrder struct {
	// MchID is the sub-order's merchant: a participant merchant bound
	// to the combine appid (a service provider gives its own mchid and
	// the sub-merchant in SubMchID).
	MchID       string             `json:"mchid"`
	Attach      string             `json:"attach"` // up to 128 characters, returned in the query and the notification
	Amount      CombineAmount      `json:"amount"`
	OutTradeNo  string             `json:"out_trade_no"`
	SubMchID    string             `json:"sub_mchid,omitempty"` // service provider
	SubAppID    string             `json:"sub_appid,omitempty"` // service provider, optional
	Detail      string             `json:"detail,omitempty"`
	GoodsTag    string             `json:"goods_tag,omitempty"`
	Description string             `json:"description"` // up to 127 characters, shown to the payer
	SettleInfo  *CombineSettleInfo `json:"settle_info,omitempty"`
}

// CombineAmount is a sub-order's amount: total_amount in fen.
type CombineAmount struct {
	TotalAmount int64  `json:"total_amount"`
	Currency    string `json:"currency"` // "CNY" when empty
}

// CombineSettleInfo is a sub-order's settlement: whether its funds are
// held for profit sharing, and a subsidy amount in fen.
type CombineSettleInfo struct {
	ProfitSharing bool  `json:"profit_sharing,omitempty"`
	SubsidyAmount int64 `json:"subsidy_amount,omitempty"`
}

// CombinePayer is the payer of a combine order.
type CombinePayer struct {
	OpenID string `json:"openid"`
}

// CombineTransaction is a combine order as the combine query returns it
// and as the resource of its TRANSACTION.SUCCESS notification: there is
// no state of the whole, each sub-order has its own trade_state.
type CombineTransaction struct {
	CombineAppID      string              `json:"combine_appid"`
	CombineMchID      string              `json:"combine_mchid"`
	CombineOutTradeNo string              `json:"combine_out_trade_no"`
	SceneInfo         *CombineSceneInfo   `json:"scene_info,omitempty"`
	SubOrders         []CombineSubOrderTx `json:"sub_orders"`
	CombinePayerInfo  *CombinePayer       `json:"combine_payer_info,omitempty"`
}

// Paid reports whether every sub-order of c is SUCCESS.
func (c *CombineTransaction) Paid() bool {
	if c == nil || len(c.SubOrders) == 0 {
		return false
	}
	for _, s := range c.SubOrders {
		if s.TradeState != "SUCCESS" {
			return false
		}
	}
	return true
}

// UnmarshalJSON refuses a resource without combine_out_trade_no: a
// plain order's transaction is not a combine order's, and a handler given
// one by mistake must fail, not see a combine order with no sub-orders.
func (c *CombineTransaction) UnmarshalJSON(b []byte) error {
	type plain CombineTransaction
	var v plain
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	if v.CombineOutTradeNo == "" {
		return errors.New("wechatpay/payments: not a combine order: combine_out_trade_no is missing")
	}
	*c = CombineTransaction(v)
	return nil
}

// CombineSubOrderTx is one sub-order of a CombineTransaction. TradeState
// is SUCCESS, REFUND, NOTPAY, CLOSED or PAYERROR; TransactionID and
// SuccessTime are set once it is paid.
type CombineSubOrderTx struct {
	MchID           string              `json:"mchid"`
	SubMchID        string              `json:"sub_mchid,omitempty"`
	SubAppID        string              `json:"sub_appid,omitempty"`
	TradeType       string              `json:"trade_type"`
	TradeState      string              `json:"trade_state"`
	BankType        string              `json:"bank_type,omitempty"`
	Attach          string              `json:"attach"`
	SuccessTime     time.Time           `json:"success_time"` // zero until paid
	TransactionID   string              `json:"transaction_id,omitempty"`
	OutTradeNo      string              `json:"out_trade_no"`
	Amount          CombineAmountResult `json:"amount"`
	PromotionDetail []json.RawMessage   `json:"promotion_detail,omitempty"`
}

// UnmarshalJSON accepts an empty or absent success_time.
func (s *CombineSubOrderTx) UnmarshalJSON(b []byte) error {
	type plain CombineSubOrderTx
	var v struct {
		plain
		SuccessTime string `json:"success_time"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = CombineSubOrderTx(v.plain)
	var err error
	s.SuccessTime, err = parseTime("success_time", v.SuccessTime)
	return err
}

// CombineAmountResult is a paid sub-order's amount, in fen.
type CombineAmountResult struct {
	TotalAmount   int64  `json:"total_amount"`
	Currency      string `json:"currency"`
	PayerAmount   int64  `json:"payer_amount"`
	PayerCurrency string `json:"payer_currency"`
}

// CombineCloseSubOrder names one sub-order of a combine order to close:
// all of them, exactly as placed.
type CombineCloseSubOrder struct {
	MchID      string `json:"mchid"`
	OutTradeNo string `json:"out_trade_no"`
	SubMchID   string `json:"sub_mchid,omitempty"`
	SubAppID   string `json:"sub_appid,omitempty"`
}

// fillCombine completes a copy of req with the Client's merchant and app
// and checks what WeChat Pay would refuse anyway, before anything is sent.
func (c *Client) fillCombine(req CombinePrepayRequest) (CombinePrepayRequest, error) {
	if req.CombineAppID == "" {
		req.CombineAppID = c.AppID
	}
	if req.CombineMchID == "" {
		req.CombineMchID = c.MerchantID
	}
	switch {
	case req.CombineOutTradeNo == "":
		return req, errors.New("wechatpay/payments: combine_out_trade_no is empty")
	case req.CombineAppID == "":
		return req, fmt.Errorf("wechatpay/payments: combine order %s: combine_appid is empty (set Client.AppID)", req.CombineOutTradeNo)
	case len(req.SubOrders) == 0:
		return req, fmt.Errorf("wechatpay/payments: combine order %s has no sub_orders", req.CombineOutTradeNo)
	}
	subs := make([]CombineSubOrder, len(req.SubOrders)) // the caller's slice stays as it was
	copy(subs, req.SubOrders)
	for i := range subs {
		s := &subs[i]
		switch {
		case s.MchID == "":
			return req, fmt.Errorf("wechatpay/payments: combine order %s: sub_orders[%d].mchid is empty", req.CombineOutTradeNo, i)
		case s.OutTradeNo == "":
			return req, fmt.Errorf("wechatpay/payments: combine order %s: sub_orders[%d].out_trade_no is empty", req.CombineOutTradeNo, i)
		case s.Amount.TotalAmount <= 0:
			return req, fmt.Errorf("wechatpay/payments: combine order %s: sub-order %s: amount.total_amount must be positive fen, not %d", req.CombineOutTradeNo, s.OutTradeNo, s.Amount.TotalAmount)
		}
		if s.Amount.Currency == "" {
			s.Amount.Currency = "CNY"
		}
	}
	req.SubOrders = subs
	if !req.TimeStart.IsZero() {
		req.TimeStart = req.TimeStart.Truncate(time.Second).In(cst)
	}
	if !req.TimeExpire.IsZero() {
		req.TimeExpire = req.TimeExpire.Truncate(time.Second).In(cst)
	}
	return req, nil
}

// combinePrepay places a combine order of kind (jsapi, app, h5, native)
// and decodes the answer into out.
func (c *Client) combinePrepay(ctx context.Context, kind string, req CombinePrepayRequest, out any) (CombinePrepayRequest, error) {
	if err := c.check(); err != nil {
		return req, err
	}
	req, err := c.fillCombine(req)
	if err != nil {
		return req, err
	}
	path := "/v3/combine-transactions/" + kind
	err = c.do(ctx, http.MethodPost, path, req, out)
	return req, apicall.Outcome(err, "combine_out_trade_no", req.CombineOutTradeNo)
}

// CombinePrepayJSAPI places a JSAPI or mini-program combine order (POST
// /v3/combine-transactions/jsapi) and returns its prepay_id.
// req.CombinePayerInfo is required. A failure whose outcome is unknown is
// an *wechatpay.OutcomeUnknownError naming the combine_out_trade_no:
// QueryCombine it before anything else. Use CombineJSAPI to get the
// front-end parameters in the same step.
func (c *Client) CombinePrepayJSAPI(ctx context.Context, req CombinePrepayRequest) (prepayID string, err error) {
	var out struct {
		PrepayID string `json:"prepay_id"`
	}
	if _, err := c.combinePrepay(ctx, "jsapi", req, &out); err != nil {
		return "", err
	}
	return nonEmpty("prepay_id", out.PrepayID)
}

// CombinePrepayApp places an App combine order (POST
// /v3/combine-transactions/app) and returns its prepay_id. Use CombineApp
// to get the front-end parameters in the same step.
func (c *Client) CombinePrepayApp(ctx context.Context, req CombinePrepayRequest) (prepayID string, err error) {
	var out struct {
		PrepayID string `json:"prepay_id"`
	}
	if _, err := c.combinePrepay(ctx, "app", req, &out); err != nil {
		return "", err
	}
	return nonEmpty("prepay_id", out.PrepayID)
}

// CombinePrepayH5 places an H5 combine order (POST
// /v3/combine-transactions/h5) and returns the h5_url to send the payer
// to. req.SceneInfo with PayerClientIP and H5Info is required.
func (c *Client) CombinePrepayH5(ctx context.Context, req CombinePrepayRequest) (h5URL string, err error) {
	var out struct {
		H5URL string `json:"h5_url"`
	}
	if _, err := c.combinePrepay(ctx, "h5", req, &out); err != nil {
		return "", err
	}
	return nonEmpty("h5_url", out.H5URL)
}

// CombinePrepayNative places a Native combine order (POST
// /v3/combine-transactions/native) and returns the code_url to show as a
// QR code.
func (c *Client) CombinePrepayNative(ctx context.Context, req CombinePrepayRequest) (codeURL string, err error) {
	var out struct {
		CodeURL string `json:"code_url"`
	}
	if _, err := c.combinePrepay(ctx, "native", req, &out); err != nil {
		return "", err
	}
	return nonEmpty("code_url", out.CodeURL)
}

// CombineJSAPI places a JSAPI or mini-program combine order and returns
// the parameters the front end passes to WeixinJSBridge /
// wx.requestPayment, signed with c.Key for the order's combine_appid.
func (c *Client) CombineJSAPI(ctx context.Context, req CombinePrepayRequest) (*JSAPIParams, error) {
	if c != nil && c.Key == nil {
		return nil, errors.New("wechatpay/payments: CombineJSAPI needs Client.Key to sign the front-end parameters")
	}
	var out struct {
		PrepayID string `json:"prepay_id"`
	}
	sent, err := c.combinePrepay(ctx, "jsapi", req, &out)
	if err != nil {
		return nil, err
	}
	if _, err := nonEmpty("prepay_id", out.PrepayID); err != nil {
		return nil, err
	}
	return NewJSAPIParams(c.Key, sent.CombineAppID, out.PrepayID)
}

// CombineApp places an App combine order and returns the parameters the
// App passes to the WeChat SDK, signed with c.Key for the order's
// combine_appid; partnerid is the combine_mchid.
func (c *Client) CombineApp(ctx context.Context, req CombinePrepayRequest) (*AppParams, error) {
	if c != nil && c.Key == nil {
		return nil, errors.New("wechatpay/payments: CombineApp needs Client.Key to sign the front-end parameters")
	}
	var out struct {
		PrepayID string `json:"prepay_id"`
	}
	sent, err := c.combinePrepay(ctx, "app", req, &out)
	if err != nil {
		return nil, err
	}
	if _, err := nonEmpty("prepay_id", out.PrepayID); err != nil {
		return nil, err
	}
	return NewAppParams(c.Key, sent.CombineAppID, sent.CombineMchID, out.PrepayID)
}

// QueryCombine returns the combine order with the merchant's
// combine_out_trade_no (GET
// /v3/combine-transactions/out-trade-no/{combine_out_trade_no}), each
// sub-order with its own trade_state. This is the query to make after an
// *wechatpay.OutcomeUnknownError from a combine prepay or close; a plain
// order's query does not find combine orders.
func (c *Client) QueryCombine(ctx context.Context, combineOutTradeNo string) (*CombineTransaction, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	seg, err := segment("combine_out_trade_no", combineOutTradeNo)
	if err != nil {
		return nil, err
	}
	var tx CombineTransaction
	if err := c.do(ctx, http.MethodGet, "/v3/combine-transactions/out-trade-no/"+seg, nil, &tx); err != nil {
		return nil, err
	}
	return &tx, nil
}

// CloseCombine closes an unpaid combine order (POST
// /v3/combine-transactions/out-trade-no/{combine_out_trade_no}/close).
// subOrders must name every sub-order exactly as placed: WeChat Pay does
// not close part of a combine order. The combine_appid sent is the
// Client's AppID. While the payer is paying, WeChat Pay answers 202
// USERPAYING and closes nothing: that is a *wechatpay.APIError with
// StatusCode 202. A failure whose outcome is unknown is an
// *wechatpay.OutcomeUnknownError naming the combine_out_trade_no.
func (c *Client) CloseCombine(ctx context.Context, combineOutTradeNo string, subOrders []CombineCloseSubOrder) error {
	if err := c.check(); err != nil {
		return err
	}
	seg, err := segment("combine_out_trade_no", combineOutTradeNo)
	if err != nil {
		return err
	}
	if len(subOrders) == 0 {
		return fmt.Errorf("wechatpay/payments: closing combine order %s: name its sub_orders", combineOutTradeNo)
	}
	if c.AppID == "" {
		return fmt.Errorf("wechatpay/payments: closing combine order %s: combine_appid is empty (set Client.AppID)", combineOutTradeNo)
	}
	body := struct {
		CombineAppID string                 `json:"combine_appid"`
		SubOrders    []CombineCloseSubOrder `json:"sub_orders"`
	}{c.AppID, subOrders}
	path := "/v3/combine-transactions/out-trade-no/" + seg + "/close"
	var answer accepted // 204, or 202 USERPAYING: the payer is paying, nothing closed
	if err := c.do(ctx, http.MethodPost, path, body, &answer); err != nil {
		return apicall.Outcome(err, "combine_out_trade_no", combineOutTradeNo)
	}
	return answer.err(http.StatusAccepted)
}
