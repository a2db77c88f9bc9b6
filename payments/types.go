package payments

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/wxpaykit/wechatpay/middleware"
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

// Payer is the paying user of a JSAPI/mini-program order: OpenID for a
// direct merchant, SpOpenID or SubOpenID for a service provider.
type Payer = middleware.Payer

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

// Transaction is an order as the query calls return it: the same fields
// as the resource of a TRANSACTION.SUCCESS notification, so it is the
// middleware's type. TradeState is one of SUCCESS, REFUND, NOTPAY,
// CLOSED, REVOKED, USERPAYING, PAYERROR.
type Transaction = middleware.Transaction

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
