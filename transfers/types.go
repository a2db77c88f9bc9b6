package transfers

import (
	"fmt"
	"log/slog"
)

// States of a transfer bill (state), docs/protocol.md §14. A bill the
// user does not confirm within 24 hours is closed by WeChat Pay: FAIL.
const (
	StateAccepted        = "ACCEPTED"          // accepted; not final
	StateProcessing      = "PROCESSING"        // locking the merchant's funds; not final
	StateWaitUserConfirm = "WAIT_USER_CONFIRM" // waiting for the user to confirm (package_info is set)
	StateTransfering     = "TRANSFERING"       // being paid out; the user may confirm again
	StateSuccess         = "SUCCESS"           // paid: final
	StateFail            = "FAIL"              // failed or expired (fail_reason says why): final
	StateCanceling       = "CANCELING"         // the merchant's cancel was accepted; not final
	StateCancelled       = "CANCELLED"         // cancelled: final
)

// Final reports whether state is final (SUCCESS, FAIL or CANCELLED):
// the only states a MCHTRANSFER.BILL.FINISHED notification carries.
func Final(state string) bool {
	return state == StateSuccess || state == StateFail || state == StateCancelled
}

// UserNameThreshold is the amount in fen from which a bill must carry the
// user's real name (user_name): 2,000 yuan ("转账金额 >= 2,000元时,该笔明细必须填写").
// Client.Create refuses a bill at or over it without one, before sending.
const UserNameThreshold = 2000_00

// SceneReportInfo is one item of transfer_scene_report_infos, the
// information the transfer scene requires (such as 活动名称, 奖励说明).
type SceneReportInfo struct {
	InfoType    string `json:"info_type"`
	InfoContent string `json:"info_content"`
}

// A BillRequest creates a transfer bill (POST
// /v3/fund-app/mch-transfer/transfer-bills). Amounts are in fen.
// UserName is the user's real name in clear text: the call path encrypts
// it with the key whose serial it sends as Wechatpay-Serial. Its String,
// GoString and LogValue leave it out.
type BillRequest struct {
	AppID string `json:"appid"`
	// SubMchID is the sub-merchant of a service provider; Client fills it
	// from Client.SubMerchantID.
	SubMchID                 string            `json:"sub_mchid,omitempty"`
	OutBillNo                string            `json:"out_bill_no"`
	TransferSceneID          string            `json:"transfer_scene_id"`
	OpenID                   string            `json:"openid"`
	UserName                 string            `json:"user_name,omitempty" wechatpay:"encrypt"`
	TransferAmount           int64             `json:"transfer_amount"`
	TransferRemark           string            `json:"transfer_remark"`
	NotifyURL                string            `json:"notify_url,omitempty"`
	UserRecvPerception       string            `json:"user_recv_perception,omitempty"`
	TransferSceneReportInfos []SceneReportInfo `json:"transfer_scene_report_infos,omitempty"`
}

// String describes r without the user's name.
func (r BillRequest) String() string {
	return fmt.Sprintf("transfers.BillRequest{OutBillNo: %q, AppID: %q, SubMchID: %q, TransferSceneID: %q, OpenID: %q, UserName: %s, TransferAmount: %d, NotifyURL: %q}",
		r.OutBillNo, r.AppID, r.SubMchID, r.TransferSceneID, r.OpenID, redacted(r.UserName), r.TransferAmount, r.NotifyURL)
}

// GoString is String, so that %#v does not print the name either.
func (r BillRequest) GoString() string { return r.String() }

// LogValue describes r to log/slog without the user's name.
func (r BillRequest) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("out_bill_no", r.OutBillNo),
		slog.String("openid", r.OpenID),
		slog.Int64("transfer_amount", r.TransferAmount),
		slog.Bool("user_name", r.UserName != ""),
	)
}

// A Bill is a transfer bill as WeChat Pay answers a create, cancel or
// query, and as a MCHTRANSFER.BILL.FINISHED notification carries it.
// Fields an answer does not carry stay empty. Times are RFC 3339 strings
// as WeChat Pay sends them. UserName is decrypted by the queries (the
// merchant's private key must be a crypto.Decrypter); its String,
// GoString and LogValue leave it out.
type Bill struct {
	MchID          string `json:"mch_id,omitempty"`
	SubMchID       string `json:"sub_mchid,omitempty"`
	OutBillNo      string `json:"out_bill_no"`
	TransferBillNo string `json:"transfer_bill_no,omitempty"`
	AppID          string `json:"appid,omitempty"`
	State          string `json:"state"`
	TransferAmount int64  `json:"transfer_amount,omitempty"`
	TransferRemark string `json:"transfer_remark,omitempty"`
	FailReason     string `json:"fail_reason,omitempty"`
	OpenID         string `json:"openid,omitempty"`
	UserName       string `json:"user_name,omitempty" wechatpay:"decrypt"`
	CreateTime     string `json:"create_time,omitempty"`
	UpdateTime     string `json:"update_time,omitempty"`
	// PackageInfo is set while the bill waits for the user
	// (WAIT_USER_CONFIRM): pass it to the front end with ConfirmParams or
	// AppQuery.
	PackageInfo string `json:"package_info,omitempty"`
}

// String describes b without the user's name.
func (b Bill) String() string {
	return fmt.Sprintf("transfers.Bill{OutBillNo: %q, TransferBillNo: %q, State: %q, TransferAmount: %d, FailReason: %q, OpenID: %q, UserName: %s}",
		b.OutBillNo, b.TransferBillNo, b.State, b.TransferAmount, b.FailReason, b.OpenID, redacted(b.UserName))
}

// GoString is String, so that %#v does not print the name either.
func (b Bill) GoString() string { return b.String() }

// LogValue describes b to log/slog without the user's name.
func (b Bill) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("out_bill_no", b.OutBillNo),
		slog.String("transfer_bill_no", b.TransferBillNo),
		slog.String("state", b.State),
		slog.Int64("transfer_amount", b.TransferAmount),
		slog.String("fail_reason", b.FailReason),
	)
}

func redacted(s string) string {
	if s == "" {
		return "[unset]"
	}
	return "[redacted]"
}

// An AuthorizationRequest asks a user for 免确认收款授权, the authorisation
// to receive later transfers without confirming each (POST
// /v3/fund-app/mch-transfer/user-confirm-authorization). The user has 24
// hours to authorise.
type AuthorizationRequest struct {
	OutAuthorizationNo     string `json:"out_authorization_no"`
	AppID                  string `json:"appid"`
	OpenID                 string `json:"openid"`
	TransferSceneID        string `json:"transfer_scene_id"`
	UserDisplayName        string `json:"user_display_name"`
	UserRecvPerception     string `json:"user_recv_perception,omitempty"`
	AuthorizationNotifyURL string `json:"authorization_notify_url"`
}

// An Authorization is a 免确认收款授权 as WeChat Pay answers it, and as
// the MCHTRANSFER.AUTHORIZATION.* notifications carry it. Only
// out_authorization_no, state and package_info are confirmed on WeChat
// Pay's pages (docs/protocol.md §14); keep Raw for the rest.
type Authorization struct {
	OutAuthorizationNo string `json:"out_authorization_no"`
	AppID              string `json:"appid,omitempty"`
	OpenID             string `json:"openid,omitempty"`
	TransferSceneID    string `json:"transfer_scene_id,omitempty"`
	State              string `json:"state,omitempty"`
	CloseReason        string `json:"close_reason,omitempty"`
	PackageInfo        string `json:"package_info,omitempty"`
	CreateTime         string `json:"create_time,omitempty"`
	UpdateTime         string `json:"update_time,omitempty"`
}

// A PreTransferRequest creates a bill the user confirms and, in the same
// step, asks them for 免确认收款授权 (POST
// /v3/fund-app/mch-transfer/transfer-bills/pre-transfer-with-authorization).
type PreTransferRequest struct {
	BillRequest
	// AuthorizationInfo is the authorisation asked for with the bill.
	AuthorizationInfo *PreAuthorization `json:"authorization_info,omitempty"`
}

// PreAuthorization is the authorisation part of a PreTransferRequest.
type PreAuthorization struct {
	OutAuthorizationNo     string `json:"out_authorization_no"`
	UserDisplayName        string `json:"user_display_name"`
	AuthorizationNotifyURL string `json:"authorization_notify_url"`
}

// Receipt states (state of an electronic receipt, 电子回单).
const (
	ReceiptGenerating = "GENERATING"
	ReceiptFinished   = "FINISHED"
	ReceiptFailed     = "FAILED"
)

// A Receipt is the electronic receipt (电子回单) of a SUCCESS bill that
// carried the user's name. Once FINISHED it has a download URL, valid 10
// minutes, and the hash of the file: DownloadReceipt checks it.
type Receipt struct {
	OutBillNo      string `json:"out_bill_no,omitempty"`
	TransferBillNo string `json:"transfer_bill_no,omitempty"`
	State          string `json:"state"`
	CreateTime     string `json:"create_time,omitempty"`
	UpdateTime     string `json:"update_time,omitempty"`
	HashType       string `json:"hash_type,omitempty"` // SHA256 (or SM3, which DownloadReceipt refuses)
	HashValue      string `json:"hash_value,omitempty"`
	DownloadURL    string `json:"download_url,omitempty"`
	FailReason     string `json:"fail_reason,omitempty"`
}
