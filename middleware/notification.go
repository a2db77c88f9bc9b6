package middleware

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// A Notification is a verified, decrypted WeChat Pay callback notification
// (docs/protocol.md §6), as the middleware hands it to the next handler. Its
// String, GoString and LogValue methods leave out Plaintext, which may
// hold personal data; print Plaintext only on purpose.
type Notification struct {
	ID           string    // id, e.g. "EV-2018022511223320873"; the same on every re-delivery
	CreateTime   time.Time // create_time; zero if it was not RFC 3339
	EventType    string    // event_type, e.g. "TRANSACTION.SUCCESS", "REFUND.SUCCESS"
	ResourceType string    // resource_type, "encrypt-resource"
	Summary      string    // summary, e.g. "支付成功"
	Resource     Resource  // how resource was encrypted
	// Plaintext is the decrypted resource, JSON. Decode it with Decode
	// into the product package's type (payments.Transaction,
	// payments.RefundNotification, ...).
	Plaintext []byte
	// MerchantID is the merchant the notification was accepted for.
	MerchantID string
	// Serial is the Wechatpay-Serial that verified it: a platform
	// certificate serial or a PUB_KEY_ID_.
	Serial string
	// Duplicate is always false.
	//
	// Deprecated: with Config.Guard, a notification already processed
	// no longer reaches the handler; keep handlers idempotent anyway.
	Duplicate bool
}

// Resource is the metadata of a notification's encrypted resource.
type Resource struct {
	OriginalType   string // original_type, e.g. "transaction", "refund"
	Algorithm      string // algorithm, "AEAD_AES_256_GCM"
	AssociatedData string // associated_data
	Nonce          string // nonce
}

type notificationKey struct{}

// NotificationFrom returns the notification the middleware put in the
// context of the request it let through.
func NotificationFrom(ctx context.Context) (*Notification, bool) {
	n, ok := ctx.Value(notificationKey{}).(*Notification)
	return n, ok && n != nil
}

// Decode unmarshals the decrypted resource into v, as json.Unmarshal
// does. Its error does not quote the plaintext.
func (n *Notification) Decode(v any) error {
	if err := json.Unmarshal(n.Plaintext, v); err != nil {
		return fmt.Errorf("wechatpay/middleware: decode notification %q: %w", truncate(n.ID, 64), sanitize(err))
	}
	return nil
}

// sanitize returns a JSON error that says where and what kind of problem,
// without the values it found (encoding/json quotes numbers).
func sanitize(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "(top level)"
		}
		return fmt.Errorf("field %s: cannot unmarshal a JSON %s into Go type %s", field, jsonKind(typeErr.Value), typeErr.Type)
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("invalid JSON at offset %d", syntaxErr.Offset)
	}
	return errors.New("cannot unmarshal the decrypted resource")
}

// jsonKind reduces UnmarshalTypeError.Value ("number 123", "string") to
// its kind.
func jsonKind(v string) string {
	kind, _, _ := strings.Cut(v, " ")
	return kind
}

// String describes n without its plaintext.
func (n Notification) String() string {
	return fmt.Sprintf("middleware.Notification{ID: %q, CreateTime: %s, EventType: %q, ResourceType: %q, Summary: %q, OriginalType: %q, MerchantID: %q, Serial: %q, Duplicate: %t, Plaintext: [%d bytes redacted]}",
		n.ID, n.CreateTime.Format(time.RFC3339), n.EventType, n.ResourceType, n.Summary, n.Resource.OriginalType, n.MerchantID, n.Serial, n.Duplicate, len(n.Plaintext))
}

// GoString is String, so that %#v does not print the plaintext either.
func (n Notification) GoString() string { return n.String() }

// LogValue describes n to log/slog without its plaintext.
func (n Notification) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", n.ID),
		slog.Time("create_time", n.CreateTime),
		slog.String("event_type", n.EventType),
		slog.String("original_type", n.Resource.OriginalType),
		slog.String("merchant_id", n.MerchantID),
		slog.String("serial", n.Serial),
		slog.Bool("duplicate", n.Duplicate),
		slog.Int("plaintext_bytes", len(n.Plaintext)),
	)
}

var _ slog.LogValuer = Notification{}

// Transaction decodes a payment notification (event TRANSACTION.*,
// original_type "transaction"), such as TRANSACTION.SUCCESS. For any other
// notification it returns an error. New code decodes into a
// payments.Transaction with Decode, or registers it with On.
func (n *Notification) Transaction() (*Transaction, error) {
	if n.Resource.OriginalType != "transaction" && !strings.HasPrefix(n.EventType, "TRANSACTION.") {
		return nil, fmt.Errorf("wechatpay/middleware: notification %q is %s (%s), not a transaction", truncate(n.ID, 64), truncate(n.EventType, 64), truncate(n.Resource.OriginalType, 32))
	}
	t := new(Transaction)
	if err := n.Decode(t); err != nil {
		return nil, err
	}
	return t, nil
}

// Refund decodes a refund notification (event REFUND.*, original_type
// "refund"): REFUND.SUCCESS, REFUND.ABNORMAL or REFUND.CLOSED. For any
// other notification it returns an error. New code decodes into a
// payments.RefundNotification with Decode, or registers it with On.
func (n *Notification) Refund() (*Refund, error) {
	if n.Resource.OriginalType != "refund" && !strings.HasPrefix(n.EventType, "REFUND.") {
		return nil, fmt.Errorf("wechatpay/middleware: notification %q is %s (%s), not a refund", truncate(n.ID, 64), truncate(n.EventType, 64), truncate(n.Resource.OriginalType, 32))
	}
	r := new(Refund)
	if err := n.Decode(r); err != nil {
		return nil, err
	}
	return r, nil
}

// Transaction is the resource of a payment notification, for direct
// merchants and service providers (the sp_ and sub_ fields). Amounts are
// in the currency's smallest unit (fen for CNY).
//
// Deprecated: use payments.Transaction with middleware.On; this copy
// stays for one release for OnTransaction and Notification.Transaction.
type Transaction struct {
	AppID          string    `json:"appid,omitempty"`
	MchID          string    `json:"mchid,omitempty"`
	SpAppID        string    `json:"sp_appid,omitempty"`
	SpMchID        string    `json:"sp_mchid,omitempty"`
	SubAppID       string    `json:"sub_appid,omitempty"`
	SubMchID       string    `json:"sub_mchid,omitempty"`
	OutTradeNo     string    `json:"out_trade_no"`
	TransactionID  string    `json:"transaction_id"`
	TradeType      string    `json:"trade_type"`       // JSAPI, NATIVE, APP, MICROPAY, MWEB, FACEPAY
	TradeState     string    `json:"trade_state"`      // SUCCESS, REFUND, NOTPAY, CLOSED, REVOKED, USERPAYING, PAYERROR
	TradeStateDesc string    `json:"trade_state_desc"` // human-readable
	BankType       string    `json:"bank_type"`
	Attach         string    `json:"attach"`
	SuccessTime    time.Time `json:"success_time"` // zero if absent or empty
	Payer          Payer     `json:"payer"`
	Amount         Amount    `json:"amount"`
	SceneInfo      *struct {
		DeviceID string `json:"device_id"`
	} `json:"scene_info,omitempty"`
	PromotionDetail []Promotion `json:"promotion_detail,omitempty"`
}

// Payer is the paying user of a Transaction.
//
// Deprecated: use payments.Payer with middleware.On.
type Payer struct {
	OpenID    string `json:"openid,omitempty"`
	SpOpenID  string `json:"sp_openid,omitempty"`
	SubOpenID string `json:"sub_openid,omitempty"`
}

// Amount is the amount of a Transaction.
//
// Deprecated: use payments.TransactionAmount with middleware.On.
type Amount struct {
	Total         int64  `json:"total"`       // order amount
	PayerTotal    int64  `json:"payer_total"` // paid by the user
	Currency      string `json:"currency"`
	PayerCurrency string `json:"payer_currency"`
}

// Promotion is a coupon or discount applied to a Transaction.
//
// Deprecated: use payments.Promotion with middleware.On.
type Promotion struct {
	CouponID            string `json:"coupon_id"`
	Name                string `json:"name"`
	Scope               string `json:"scope"` // GLOBAL, SINGLE
	Type                string `json:"type"`  // CASH, NOCASH
	Amount              int64  `json:"amount"`
	StockID             string `json:"stock_id"`
	WechatpayContribute int64  `json:"wechatpay_contribute"`
	MerchantContribute  int64  `json:"merchant_contribute"`
	OtherContribute     int64  `json:"other_contribute"`
	Currency            string `json:"currency"`
	GoodsDetail         []struct {
		GoodsID        string `json:"goods_id"`
		Quantity       int64  `json:"quantity"`
		UnitPrice      int64  `json:"unit_price"`
		DiscountAmount int64  `json:"discount_amount"`
		GoodsRemark    string `json:"goods_remark"`
	} `json:"goods_detail,omitempty"`
}

// UnmarshalJSON accepts an empty or absent success_time.
func (t *Transaction) UnmarshalJSON(b []byte) error {
	type plain Transaction
	aux := struct {
		*plain
		SuccessTime string `json:"success_time"`
	}{plain: (*plain)(t)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	return parseOptionalTime(aux.SuccessTime, &t.SuccessTime)
}

// Refund is the resource of a refund notification. Amounts are in fen.
//
// Deprecated: use payments.RefundNotification (not payments.Refund, the
// answer of the refund calls) with middleware.On; this copy stays for one
// release for OnRefund and Notification.Refund.
type Refund struct {
	MchID               string       `json:"mchid,omitempty"`
	SpMchID             string       `json:"sp_mchid,omitempty"`
	SubMchID            string       `json:"sub_mchid,omitempty"`
	OutTradeNo          string       `json:"out_trade_no"`
	TransactionID       string       `json:"transaction_id"`
	OutRefundNo         string       `json:"out_refund_no"`
	RefundID            string       `json:"refund_id"`
	RefundStatus        string       `json:"refund_status"` // SUCCESS, CLOSED, ABNORMAL
	SuccessTime         time.Time    `json:"success_time"`  // zero unless SUCCESS
	UserReceivedAccount string       `json:"user_received_account"`
	Amount              RefundAmount `json:"amount"`
}

// RefundAmount is the amount of a Refund.
//
// Deprecated: use payments.RefundNotificationAmount with middleware.On.
type RefundAmount struct {
	Total       int64 `json:"total"`        // order amount
	Refund      int64 `json:"refund"`       // refunded amount
	PayerTotal  int64 `json:"payer_total"`  // paid by the user
	PayerRefund int64 `json:"payer_refund"` // refunded to the user
}

// UnmarshalJSON accepts an empty or absent success_time.
func (r *Refund) UnmarshalJSON(b []byte) error {
	type plain Refund
	aux := struct {
		*plain
		SuccessTime string `json:"success_time"`
	}{plain: (*plain)(r)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	return parseOptionalTime(aux.SuccessTime, &r.SuccessTime)
}

func parseOptionalTime(s string, dst *time.Time) error {
	if s == "" {
		*dst = time.Time{}
		return nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return errors.New("success_time is not an RFC 3339 time")
	}
	*dst = t
	return nil
}

// parseTime parses an RFC 3339 time, or returns the zero time: a
// malformed create_time is no reason to refuse a genuine notification.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t
}
