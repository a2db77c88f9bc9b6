package payments

import (
	"encoding/json"
	"fmt"
	"time"
)

// Field names and meanings follow WeChat Pay's API pages (docs/protocol.md §12);
// only fields seen there are here. Optional objects whose sub-fields those
// pages did not show (detail, settle_info, store_info, refund goods_detail)
// are left out: send them with Do and a struct of your own. Sources:
// JSAPI/mini-program prepay, pay.weixin.qq.com/docs/merchant/products/jsapi-payment/apilist.html
// and doc/v3/merchant/4012525167; H5, doc/v3/merchant/4012525153 and
// docs/merchant/products/h5-payment/apilist.html; the service provider's
// doc/v3/partner/4012523579; refunds,
// docs/merchant/products/refund/apilist.html and doc/v3/partner/4012886219;
// bills, doc/v3/merchant/4012556654. Amounts are in fen.

// PrepayRequest is the body of a prepay (下单) request, the same for
// JSAPI/mini-program, App, H5 and Native. The Client fills the merchant
// and app fields (appid/mchid, or sp_appid/sp_mchid/sub_appid/sub_mchid
// for a service provider) from its own configuration when they are empty.
type PrepayRequest struct {
	AppID    string `json:"appid,omitempty"`     // direct merchant
	MchID    string `json:"mchid,omitempty"`     // direct merchant
	SpAppID  string `json:"sp_appid,omitempty"`  // service provider
	SpMchID  string `json:"sp_mchid,omitempty"`  // service provider
	SubAppID string `json:"sub_appid,omitempty"` // service provider, optional
	SubMchID string `json:"sub_mchid,omitempty"` // service provider

	Description string `json:"description"`  // up to 127 characters, shown to the payer
	OutTradeNo  string `json:"out_trade_no"` // 6–32 characters: digits, letters, _-|*
	// TimeExpire is the time after which the order can no longer be
	// paid; zero leaves it out (WeChat Pay's default is 7 days). It is
	// sent in whole seconds at UTC+8, as WeChat Pay's examples show.
	TimeExpire    time.Time   `json:"time_expire,omitzero"`
	Attach        string      `json:"attach,omitempty"` // up to 128 characters, returned in queries and notifications
	NotifyURL     string      `json:"notify_url"`       // https, without a query
	GoodsTag      string      `json:"goods_tag,omitempty"`
	SupportFapiao bool        `json:"support_fapiao,omitempty"`
	Amount        OrderAmount `json:"amount"`
	Payer         *Payer      `json:"payer,omitempty"`      // JSAPI/mini-program only
	SceneInfo     *SceneInfo  `json:"scene_info,omitempty"` // required for H5
	SettleInfo    *SettleInfo `json:"settle_info,omitempty"`
}

// OrderAmount is the amount of a prepay request.
type OrderAmount struct {
	Total    int64  `json:"total"`              // fen
	Currency string `json:"currency,omitempty"` // "CNY" when empty
}

// Payer is the paying user of a JSAPI/mini-program order, or of a
// Transaction: OpenID for a direct merchant, SpOpenID or SubOpenID for a
// service provider.
type Payer struct {
	OpenID    string `json:"openid,omitempty"`
	SpOpenID  string `json:"sp_openid,omitempty"`
	SubOpenID string `json:"sub_openid,omitempty"`
}

// SceneInfo describes where the payment happens: the payer's IP and, for
// H5 orders, the H5 scene.
type SceneInfo struct {
	PayerClientIP string  `json:"payer_client_ip"`
	H5Info        *H5Info `json:"h5_info,omitempty"`
}

// H5Info is the H5 scene of a SceneInfo. Only the field confirmed on
// WeChat Pay's own H5 page is here; its other, optional sub-fields can be
// sent with Do.
type H5Info struct {
	Type string `json:"type"` // "Wap", "iOS", "Android"
}

// Transaction is an order as the query calls return it, and the resource
// of a payment notification (TRANSACTION.SUCCESS), for direct merchants
// and service providers (the sp_ and sub_ fields). Receive the
// notification with
//
//	middleware.On(&rt, middleware.EventTransactionSuccess, func(ctx context.Context, n *middleware.Notification, tx *payments.Transaction) error { ... })
type Transaction struct {
	AppID           string            `json:"appid,omitempty"`
	MchID           string            `json:"mchid,omitempty"`
	SpAppID         string            `json:"sp_appid,omitempty"`
	SpMchID         string            `json:"sp_mchid,omitempty"`
	SubAppID        string            `json:"sub_appid,omitempty"`
	SubMchID        string            `json:"sub_mchid,omitempty"`
	OutTradeNo      string            `json:"out_trade_no"`
	TransactionID   string            `json:"transaction_id"`
	TradeType       string            `json:"trade_type"`       // JSAPI, NATIVE, APP, MICROPAY, MWEB, FACEPAY
	TradeState      string            `json:"trade_state"`      // SUCCESS, REFUND, NOTPAY, CLOSED, REVOKED, USERPAYING, PAYERROR
	TradeStateDesc  string            `json:"trade_state_desc"` // human-readable
	BankType        string            `json:"bank_type"`
	Attach          string            `json:"attach"`
	SuccessTime     time.Time         `json:"success_time"` // zero if absent or empty
	Payer           Payer             `json:"payer"`
	Amount          TransactionAmount `json:"amount"`
	SceneInfo       *TransactionScene `json:"scene_info,omitempty"`
	PromotionDetail []Promotion       `json:"promotion_detail,omitempty"`
}

// UnmarshalJSON accepts an empty or absent success_time, which WeChat Pay
// sends until the order is paid.
func (t *Transaction) UnmarshalJSON(b []byte) error {
	type plain Transaction
	var v struct {
		plain
		SuccessTime string `json:"success_time"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*t = Transaction(v.plain)
	var err error
	t.SuccessTime, err = parseTime("success_time", v.SuccessTime)
	return err
}

// TransactionAmount is the amount of a Transaction, in the currency's
// smallest unit (fen for CNY).
type TransactionAmount struct {
	Total         int64  `json:"total"`       // order amount
	PayerTotal    int64  `json:"payer_total"` // paid by the user
	Currency      string `json:"currency"`
	PayerCurrency string `json:"payer_currency"`
}

// TransactionScene is the scene of a Transaction.
type TransactionScene struct {
	DeviceID string `json:"device_id"`
}

// Promotion is a coupon or discount applied to a Transaction.
type Promotion struct {
	CouponID            string           `json:"coupon_id"`
	Name                string           `json:"name"`
	Scope               string           `json:"scope"` // GLOBAL, SINGLE
	Type                string           `json:"type"`  // CASH, NOCASH
	Amount              int64            `json:"amount"`
	StockID             string           `json:"stock_id"`
	WechatpayContribute int64            `json:"wechatpay_contribute"`
	MerchantContribute  int64            `json:"merchant_contribute"`
	OtherContribute     int64            `json:"other_contribute"`
	Currency            string           `json:"currency"`
	GoodsDetail         []PromotionGoods `json:"goods_detail,omitempty"`
}

// PromotionGoods is a good a Promotion applied to.
type PromotionGoods struct {
	GoodsID        string `json:"goods_id"`
	Quantity       int64  `json:"quantity"`
	UnitPrice      int64  `json:"unit_price"`
	DiscountAmount int64  `json:"discount_amount"`
	GoodsRemark    string `json:"goods_remark"`
}

// RefundNotification is the resource of a refund notification
// (REFUND.SUCCESS, REFUND.ABNORMAL, REFUND.CLOSED). It is not a Refund,
// the answer of the refund calls: its status is RefundStatus and its
// amount has fewer fields. Receive it with
//
//	middleware.On(&rt, middleware.EventRefundSuccess, func(ctx context.Context, n *middleware.Notification, rf *payments.RefundNotification) error { ... })
type RefundNotification struct {
	MchID               string                   `json:"mchid,omitempty"`
	SpMchID             string                   `json:"sp_mchid,omitempty"`
	SubMchID            string                   `json:"sub_mchid,omitempty"`
	OutTradeNo          string                   `json:"out_trade_no"`
	TransactionID       string                   `json:"transaction_id"`
	OutRefundNo         string                   `json:"out_refund_no"`
	RefundID            string                   `json:"refund_id"`
	RefundStatus        string                   `json:"refund_status"` // SUCCESS, CLOSED, ABNORMAL
	SuccessTime         time.Time                `json:"success_time"`  // zero unless SUCCESS
	UserReceivedAccount string                   `json:"user_received_account"`
	Amount              RefundNotificationAmount `json:"amount"`
}

// UnmarshalJSON accepts an empty or absent success_time.
func (r *RefundNotification) UnmarshalJSON(b []byte) error {
	type plain RefundNotification
	var v struct {
		plain
		SuccessTime string `json:"success_time"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = RefundNotification(v.plain)
	var err error
	r.SuccessTime, err = parseTime("success_time", v.SuccessTime)
	return err
}

// RefundNotificationAmount is the amount of a RefundNotification, in fen.
type RefundNotificationAmount struct {
	Total       int64 `json:"total"`        // order amount
	Refund      int64 `json:"refund"`       // refunded amount
	PayerTotal  int64 `json:"payer_total"`  // paid by the user
	PayerRefund int64 `json:"payer_refund"` // refunded to the user
}

// RefundRequest is the body of a refund request. Set TransactionID or
// OutTradeNo. The Client fills SubMchID for a service provider.
type RefundRequest struct {
	SubMchID      string `json:"sub_mchid,omitempty"`
	TransactionID string `json:"transaction_id,omitempty"`
	OutTradeNo    string `json:"out_trade_no,omitempty"`
	// OutRefundNo is the merchant's refund number, up to 64 characters:
	// the same number never refunds twice.
	OutRefundNo  string       `json:"out_refund_no"`
	Reason       string       `json:"reason,omitempty"`        // up to 80 bytes, shown to the payer
	NotifyURL    string       `json:"notify_url,omitempty"`    // overrides the configured one
	FundsAccount string       `json:"funds_account,omitempty"` // AVAILABLE, UNSETTLED
	Amount       RefundAmount `json:"amount"`
}

// RefundAmount is the amount of a refund request.
type RefundAmount struct {
	Refund   int64         `json:"refund"` // fen, at most what was paid and not yet refunded
	From     []FundsSource `json:"from,omitempty"`
	Total    int64         `json:"total"`    // the order's total, fen
	Currency string        `json:"currency"` // "CNY" when empty
}

// FundsSource is an account a refund is paid from, and how much.
type FundsSource struct {
	Account string `json:"account"` // AVAILABLE, UNAVAILABLE
	Amount  int64  `json:"amount"`
}

// Refund is a refund as the refund and refund query calls return it.
// Status is SUCCESS, CLOSED, PROCESSING or ABNORMAL.
type Refund struct {
	RefundID            string       `json:"refund_id"`
	OutRefundNo         string       `json:"out_refund_no"`
	TransactionID       string       `json:"transaction_id"`
	OutTradeNo          string       `json:"out_trade_no"`
	Channel             string       `json:"channel"` // ORIGINAL, BALANCE, OTHER_BALANCE, OTHER_BANKCARD
	UserReceivedAccount string       `json:"user_received_account"`
	SuccessTime         time.Time    `json:"success_time"` // zero unless Status is SUCCESS
	CreateTime          time.Time    `json:"create_time"`
	Status              string       `json:"status"`
	FundsAccount        string       `json:"funds_account"`
	Amount              RefundResult `json:"amount"`
}

// UnmarshalJSON accepts an empty or absent success_time or create_time,
// which WeChat Pay sends as long as the refund has not succeeded.
func (r *Refund) UnmarshalJSON(b []byte) error {
	type plain Refund
	var v struct {
		plain
		SuccessTime string `json:"success_time"`
		CreateTime  string `json:"create_time"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Refund(v.plain)
	var err error
	if r.SuccessTime, err = parseTime("success_time", v.SuccessTime); err != nil {
		return err
	}
	r.CreateTime, err = parseTime("create_time", v.CreateTime)
	return err
}

func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("wechatpay/payments: %s %.40q is not an RFC 3339 time", field, s)
	}
	return t, nil
}

// RefundResult is the amount of a Refund, in fen.
type RefundResult struct {
	Total            int64         `json:"total"`
	Refund           int64         `json:"refund"`
	From             []FundsSource `json:"from,omitempty"`
	PayerTotal       int64         `json:"payer_total"`
	PayerRefund      int64         `json:"payer_refund"`
	SettlementRefund int64         `json:"settlement_refund"`
	SettlementTotal  int64         `json:"settlement_total"`
	DiscountRefund   int64         `json:"discount_refund"`
	Currency         string        `json:"currency"`
}

// TradeBillRequest asks for the trade bill of one day.
type TradeBillRequest struct {
	// BillDate is the day, "2006-01-02", within the last three months.
	BillDate string
	// BillType is ALL (the default when empty), SUCCESS or REFUND.
	BillType string
}

// FundFlowBillRequest asks for the fund-flow bill of one day.
type FundFlowBillRequest struct {
	// BillDate is the day, "2006-01-02", within the last three months.
	BillDate string
	// AccountType is BASIC (the default when empty), OPERATION or FEES.
	AccountType string
}
