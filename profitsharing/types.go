package profitsharing

import "time"

// Receiver types (分账接收方类型), docs/protocol.md §15.
const (
	MerchantID        = "MERCHANT_ID"         // a merchant, by mchid
	PersonalOpenID    = "PERSONAL_OPENID"     // a person, by openid under the merchant's appid
	PersonalSubOpenID = "PERSONAL_SUB_OPENID" // a person, by openid under the sub-merchant's appid
)

// Order states, receiver results and return results (docs/protocol.md §15).
const (
	StateProcessing = "PROCESSING"
	StateFinished   = "FINISHED"

	ResultPending = "PENDING"
	ResultSuccess = "SUCCESS"
	ResultClosed  = "CLOSED"

	ReturnProcessing = "PROCESSING"
	ReturnSuccess    = "SUCCESS"
	ReturnFailed     = "FAILED"
)

// Event types of the notifications WeChat Pay sends to a receiver when
// money was shared to it or returned from it.
const (
	EventSuccess = "PROFITSHARING.SUCCESS"
	EventReturn  = "PROFITSHARING.RETURN"
)

// A Receiver is a party a merchant may share to (POST
// /v3/profitsharing/receivers/add). Name is the merchant's full name for
// a MerchantID receiver (required), or the person's real name (optional,
// checked when given); it is encrypted on the wire by the Transport.
type Receiver struct {
	SubMchID       string `json:"sub_mchid,omitempty"` // set from Client.SubMerchantID
	AppID          string `json:"appid,omitempty"`     // set from Client.AppID
	SubAppID       string `json:"sub_appid,omitempty"` // set from Client.SubAppID
	Type           string `json:"type"`
	Account        string `json:"account"`
	Name           string `json:"name,omitempty" wechatpay:"encrypt"`
	RelationType   string `json:"relation_type"`             // STORE, STAFF, STORE_OWNER, PARTNER, HEADQUARTER, BRAND, DISTRIBUTOR, USER, SUPPLIER, CUSTOM (SERVICE_PROVIDER for a service provider)
	CustomRelation string `json:"custom_relation,omitempty"` // with RelationType CUSTOM
}

// String leaves the name out.
func (r Receiver) String() string {
	return "profitsharing.Receiver{Type: " + r.Type + ", Account: " + r.Account + ", RelationType: " + r.RelationType + ", Name: " + redact(r.Name) + "}"
}

// GoString is String, so that %#v does not print the name either.
func (r Receiver) GoString() string { return r.String() }

// AddedReceiver is WeChat Pay's answer to AddReceiver; Name arrives
// encrypted for the merchant and is decrypted with its private key.
type AddedReceiver struct {
	SubMchID       string `json:"sub_mchid,omitempty"`
	Type           string `json:"type"`
	Account        string `json:"account"`
	Name           string `json:"name,omitempty" wechatpay:"decrypt"`
	RelationType   string `json:"relation_type"`
	CustomRelation string `json:"custom_relation,omitempty"`
}

// String leaves the name out.
func (r AddedReceiver) String() string {
	return "profitsharing.AddedReceiver{Type: " + r.Type + ", Account: " + r.Account + ", RelationType: " + r.RelationType + ", Name: " + redact(r.Name) + "}"
}

// GoString is String.
func (r AddedReceiver) GoString() string { return r.String() }

func redact(s string) string {
	if s == "" {
		return `""`
	}
	return "[redacted]"
}

// OrderRequest shares a paid order (POST /v3/profitsharing/orders).
type OrderRequest struct {
	SubMchID      string          `json:"sub_mchid,omitempty"` // set from Client.SubMerchantID
	AppID         string          `json:"appid,omitempty"`     // required with a PERSONAL_OPENID receiver; set from Client.AppID
	SubAppID      string          `json:"sub_appid,omitempty"` // required with a PERSONAL_SUB_OPENID receiver
	TransactionID string          `json:"transaction_id"`
	OutOrderNo    string          `json:"out_order_no"` // the merchant's number for this sharing; the same number is the same request
	Receivers     []OrderReceiver `json:"receivers"`    // 1 to 50
	// UnfreezeUnsplit releases what is not shared to the merchant at
	// once; the order can then not be shared again.
	UnfreezeUnsplit bool `json:"unfreeze_unsplit"`
}

// OrderReceiver is one receiver of an OrderRequest.
type OrderReceiver struct {
	Type        string `json:"type"`
	Account     string `json:"account"`
	Name        string `json:"name,omitempty" wechatpay:"encrypt"` // optional, a person's real name, checked when given
	Amount      int64  `json:"amount"`                             // fen
	Description string `json:"description"`
}

// String leaves the name out.
func (r OrderReceiver) String() string {
	return "profitsharing.OrderReceiver{Type: " + r.Type + ", Account: " + r.Account + ", Name: " + redact(r.Name) + "}"
}

// GoString is String.
func (r OrderReceiver) GoString() string { return r.String() }

// An Order is a profit-sharing order as WeChat Pay reports it.
type Order struct {
	SubMchID      string          `json:"sub_mchid,omitempty"`
	TransactionID string          `json:"transaction_id"`
	OutOrderNo    string          `json:"out_order_no"`
	OrderID       string          `json:"order_id"`
	State         string          `json:"state"` // StateProcessing, StateFinished
	Receivers     []ReceiverShare `json:"receivers"`
}

// ReceiverShare is how one receiver of an Order fared.
type ReceiverShare struct {
	Amount      int64     `json:"amount"`
	Description string    `json:"description"`
	Type        string    `json:"type"`
	Account     string    `json:"account"`
	Result      string    `json:"result"`                // ResultPending, ResultSuccess, ResultClosed
	FailReason  string    `json:"fail_reason,omitempty"` // with ResultClosed
	DetailID    string    `json:"detail_id"`
	CreateTime  time.Time `json:"create_time,omitzero"`
	FinishTime  time.Time `json:"finish_time,omitzero"`
}

// UnfreezeRequest releases what is left of a paid order to the merchant
// (POST /v3/profitsharing/orders/unfreeze).
type UnfreezeRequest struct {
	SubMchID      string `json:"sub_mchid,omitempty"`
	TransactionID string `json:"transaction_id"`
	OutOrderNo    string `json:"out_order_no"` // a new number of the merchant's, for this unfreeze
	Description   string `json:"description"`
}

// ReturnRequest takes shared money back from a merchant receiver (POST
// /v3/profitsharing/return-orders). Set one of OrderID and OutOrderNo.
type ReturnRequest struct {
	SubMchID    string `json:"sub_mchid,omitempty"`
	OrderID     string `json:"order_id,omitempty"`
	OutOrderNo  string `json:"out_order_no,omitempty"`
	OutReturnNo string `json:"out_return_no"`
	ReturnMchID string `json:"return_mchid"` // the receiver the money comes back from
	Amount      int64  `json:"amount"`       // fen, at most what was shared to it
	Description string `json:"description"`
}

// A ReturnOrder is a return as WeChat Pay reports it.
type ReturnOrder struct {
	SubMchID    string    `json:"sub_mchid,omitempty"`
	OrderID     string    `json:"order_id"`
	OutOrderNo  string    `json:"out_order_no"`
	OutReturnNo string    `json:"out_return_no"`
	ReturnID    string    `json:"return_id"`
	ReturnMchID string    `json:"return_mchid"`
	Amount      int64     `json:"amount"`
	Description string    `json:"description"`
	Result      string    `json:"result"` // ReturnProcessing, ReturnSuccess, ReturnFailed
	FailReason  string    `json:"fail_reason,omitempty"`
	CreateTime  time.Time `json:"create_time,omitzero"`
	FinishTime  time.Time `json:"finish_time,omitzero"`
}

// A Notification is the decrypted resource of a PROFITSHARING.SUCCESS or
// PROFITSHARING.RETURN notification, which WeChat Pay sends to a
// merchant that was shared to:
//
//	middleware.On(&rt, profitsharing.EventSuccess, func(ctx context.Context, n *middleware.Notification, p *profitsharing.Notification) error {
//		return books.Credit(ctx, p.OutOrderNo, p.Receiver.Amount)
//	})
type Notification struct {
	MchID         string           `json:"mchid,omitempty"`
	SpMchID       string           `json:"sp_mchid,omitempty"`
	SubMchID      string           `json:"sub_mchid,omitempty"`
	TransactionID string           `json:"transaction_id"`
	OrderID       string           `json:"order_id"`
	OutOrderNo    string           `json:"out_order_no"`
	Receiver      NotifiedReceiver `json:"receiver"`
	SuccessTime   time.Time        `json:"success_time,omitzero"`
}

// NotifiedReceiver is the receiver side of a Notification.
type NotifiedReceiver struct {
	Type        string `json:"type"`
	Account     string `json:"account"`
	Amount      int64  `json:"amount"`
	Description string `json:"description"`
}
