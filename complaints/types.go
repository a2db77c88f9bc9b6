package complaints

import (
	"fmt"
	"log/slog"
)

// Event types of complaint notifications (docs/protocol.md §18).
const (
	// EventCreate is a new complaint.
	EventCreate = "COMPLAINT.CREATE"
	// EventStateChange is any later step of a complaint.
	EventStateChange = "COMPLAINT.STATE_CHANGE"
)

// States of a complaint (complaint_state).
const (
	StatePending    = "PENDING"    // 待处理: the merchant has not answered yet
	StateProcessing = "PROCESSING" // 处理中
	StateProcessed  = "PROCESSED"  // 已处理完成
)

// Action types a notification carries (action_type), as WeChat Pay lists
// them; a notification may carry one not listed here.
const (
	ActionCreateComplaint         = "CREATE_COMPLAINT"
	ActionContinueComplaint       = "CONTINUE_COMPLAINT"
	ActionUserResponse            = "USER_RESPONSE"
	ActionResponseByPlatform      = "RESPONSE_BY_PLATFORM"
	ActionSellerRefund            = "SELLER_REFUND"
	ActionMerchantResponse        = "MERCHANT_RESPONSE"
	ActionMerchantConfirmComplete = "MERCHANT_CONFIRM_COMPLETE"
	ActionMerchantApproveRefund   = "MERCHANT_APPROVE_REFUND"
	ActionMerchantRejectRefund    = "MERCHANT_REJECT_REFUND"
	ActionRefundSuccess           = "REFUND_SUCCESS"
)

// Refund approval actions of UpdateRefundProgress.
const (
	RefundApprove = "APPROVE"
	RefundReject  = "REJECT"
)

// Notice is the decrypted resource of a complaint notification
// (COMPLAINT.CREATE, COMPLAINT.STATE_CHANGE): which complaint, and what
// happened. Fetch the complaint with Client.Get to see its state. Register
// a handler for it with middleware.On[complaints.Notice].
type Notice struct {
	ComplaintID string `json:"complaint_id"`
	ActionType  string `json:"action_type"`
}

// Complaint is a complaint as the detail and list queries return it.
//
// PayerPhone is the payer's phone number encrypted for the merchant (RSA
// OAEP with the merchant API certificate's key) unless the complaint was
// fetched with Client.GetWithPhone or ListRequest.WithPhone, which have
// the call path decrypt it (the wechatpay:"decrypt" step). A Complaint prints without it: String, GoString and LogValue say
// only whether it is set.
type Complaint struct {
	ComplaintID          string      `json:"complaint_id"`
	ComplaintTime        string      `json:"complaint_time"` // RFC 3339
	ComplaintDetail      string      `json:"complaint_detail"`
	ComplaintState       string      `json:"complaint_state"` // StatePending, StateProcessing, StateProcessed
	ComplaintedMchID     string      `json:"complainted_mchid"`
	PayerPhone           string      `json:"payer_phone,omitempty"`
	PayerOpenID          string      `json:"payer_openid,omitempty"`
	ComplaintMediaList   []Media     `json:"complaint_media_list,omitempty"`
	ComplaintOrderInfo   []OrderInfo `json:"complaint_order_info,omitempty"`
	ComplaintFullRefund  bool        `json:"complaint_full_refunded"`
	IncomingUserResponse bool        `json:"incoming_user_response"`
	UserComplaintTimes   int         `json:"user_complaint_times,omitempty"`
	ProblemDescription   string      `json:"problem_description,omitempty"`
	ProblemType          string      `json:"problem_type,omitempty"`
	ApplyRefundAmount    int64       `json:"apply_refund_amount,omitempty"` // fen
}

// String describes c without the payer's phone number.
func (c Complaint) String() string {
	return fmt.Sprintf("complaints.Complaint{ComplaintID: %q, State: %s, ComplaintedMchID: %q, Orders: %d, PayerPhone: %s}",
		c.ComplaintID, c.ComplaintState, c.ComplaintedMchID, len(c.ComplaintOrderInfo), redacted(c.PayerPhone != ""))
}

// GoString is String, so that %#v does not print the phone number either.
func (c Complaint) GoString() string { return c.String() }

// LogValue describes c to log/slog without the payer's phone number.
func (c Complaint) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("complaint_id", c.ComplaintID),
		slog.String("complaint_state", c.ComplaintState),
		slog.String("complainted_mchid", c.ComplaintedMchID),
		slog.Bool("payer_phone", c.PayerPhone != ""),
	)
}

func redacted(set bool) string {
	if set {
		return "[redacted]"
	}
	return "[unset]"
}

// Media is a group of files attached to a complaint or a negotiation
// step: media_type (USER_COMPLAINT_IMAGE, OPERATION_IMAGE, ...) and the
// URLs to download them with Client.DownloadImage.
type Media struct {
	MediaType string   `json:"media_type"`
	MediaURL  []string `json:"media_url"`
}

// OrderInfo is an order a complaint is about.
type OrderInfo struct {
	TransactionID string `json:"transaction_id"`
	OutTradeNo    string `json:"out_trade_no"`
	Amount        int64  `json:"amount"` // fen
}

// ListRequest selects complaints by the day they were filed.
type ListRequest struct {
	// BeginDate and EndDate are days, "2006-01-02", at most 30 days
	// apart. Required.
	BeginDate, EndDate string
	// Limit is the page size, 1 to 50; zero leaves it to WeChat Pay.
	Limit int
	// Offset is the index of the first complaint of the page.
	Offset int
	// ComplaintedMchID, for a service provider, selects one
	// sub-merchant's complaints.
	ComplaintedMchID string
	// WithPhone decrypts each complaint's PayerPhone with the merchant
	// key; otherwise it stays encrypted.
	WithPhone bool
}

// Page is a page of complaints.
type Page struct {
	Data       []Complaint `json:"data"`
	Limit      int         `json:"limit"`
	Offset     int         `json:"offset"`
	TotalCount int         `json:"total_count"` // only with Offset 0
}

// NegotiationLog is one step of a complaint's negotiation history.
type NegotiationLog struct {
	LogID              string  `json:"log_id"`
	Operator           string  `json:"operator"`
	OperateTime        string  `json:"operate_time"` // RFC 3339
	OperateType        string  `json:"operate_type"`
	OperateDetails     string  `json:"operate_details"`
	ComplaintMediaList []Media `json:"complaint_media_list,omitempty"`
}

// History is a page of a complaint's negotiation history.
type History struct {
	Data       []NegotiationLog `json:"data"`
	Limit      int              `json:"limit"`
	Offset     int              `json:"offset"`
	TotalCount int              `json:"total_count"`
}

// Response is the merchant's answer to the payer (POST …/response).
type Response struct {
	// ComplaintedMchID is the merchant complained about. Required.
	ComplaintedMchID string `json:"complainted_mchid"`
	// ResponseContent is the text shown to the payer. Required.
	ResponseContent string `json:"response_content"`
	// ResponseImages are media IDs from Client.UploadImage.
	ResponseImages      []string             `json:"response_images,omitempty"`
	JumpURL             string               `json:"jump_url,omitempty"`
	JumpURLText         string               `json:"jump_url_text,omitempty"`
	MiniProgramJumpInfo *MiniProgramJumpInfo `json:"mini_program_jump_info,omitempty"`
}

// MiniProgramJumpInfo is a mini-program page a response links to.
type MiniProgramJumpInfo struct {
	AppID string `json:"appid"`
	Path  string `json:"path"`
	Text  string `json:"text"`
}

// RefundProgress is the merchant's decision on a refund the payer asked
// for (POST …/update-refund-progress).
type RefundProgress struct {
	// Action is RefundApprove or RefundReject. Required.
	Action string `json:"action"`
	// LaunchRefundDay, with RefundApprove, is in how many working days
	// the refund starts (0: today). Make the refund with the refund API.
	LaunchRefundDay *int `json:"launch_refund_day,omitempty"`
	// RejectReason, with RefundReject, says why.
	RejectReason string `json:"reject_reason,omitempty"`
	// RejectMediaList, with RefundReject, are up to 4 media IDs from
	// Client.UploadImage.
	RejectMediaList []string `json:"reject_media_list,omitempty"`
	Remark          string   `json:"remark,omitempty"`
}

// NotificationURL is the merchant's complaint notification address.
type NotificationURL struct {
	MchID string `json:"mchid"`
	URL   string `json:"url"`
}
