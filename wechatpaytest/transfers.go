package wechatpaytest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
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

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// The 2025 merchant transfer (商家转账, 用户确认模式), docs/protocol.md
// §14: bills that wait for the user's confirmation, cancel, queries,
// electronic receipts and 免确认收款授权. Facts come from WeChat Pay's
// pages cited there: the create page
// (pay.weixin.qq.com/docs/merchant/apis/mch-trans/transfer-bill/transfer-to-user.html),
// the query and cancel pages, the FAQ (pay.weixin.qq.com/doc/v3/merchant/4013778940:
// 24 hours to confirm; "单号已存在但信息不一致,请查单后比较确认") and the
// callback page (MCHTRANSFER.BILL.FINISHED, mch_payment).

// Transfer bill states.
const (
	transferAccepted = "ACCEPTED"
	transferWaiting  = "WAIT_USER_CONFIRM"
	transferSuccess  = "SUCCESS"
	transferFail     = "FAIL"
	transferCanceled = "CANCELLED"
)

const (
	// transferWindow is how long a bill waits for the user: 24 hours
	// ("用户收款的时效是24小时,如用户不确认将在24小时后关闭单据").
	transferWindow = 24 * time.Hour
	// userNameThreshold: from 2,000 yuan a bill must carry user_name.
	userNameThreshold = 2000_00
	// transferRateLimit is the documented limit of the create route:
	// "单个商户的接口频率限制为100次/s".
	transferRateLimit = 100
	// receiptFilePath serves receipt files, unsigned as WeChat Pay sends
	// them (docs/protocol.md §2.5).
	receiptFilePath = "/v3/transferdownload/elecvoucherfile"
)

// transferBill is one simulated bill; UserName is held in clear, as
// WeChat Pay decrypted it.
type transferBill struct {
	Owner, Merchant string
	Partner         bool
	AppID           string
	OutBillNo       string
	TransferBillNo  string
	SceneID         string
	OpenID          string
	UserName        string
	Amount          int64
	Remark          string
	NotifyURL       string
	Fingerprint     string
	State           string
	FailReason      string
	Package         string
	Created         time.Time
	Updated         time.Time
	Receipt         string // "", GENERATING or FINISHED
	ReceiptToken    string
	Authorization   string // the key of the authorisation a pre-transfer asked for
}

type transferAuth struct {
	Merchant, OutAuthorizationNo, AppID, OpenID, SceneID, NotifyURL string
	State, Package                                                  string
	Created, Updated                                                time.Time
}

// transfers is the transfer part of the simulator. Its mutex guards
// everything below it; it is never held while a callback is delivered.
type transfers struct {
	clock     *simClock
	merchants *merchants
	delivery  *delivery
	fields    *sensitiveFields
	core      *core
	url       string // the server's base URL, for download_url and the page's Origin check

	mu        sync.Mutex
	bills     map[string]*transferBill // by owner/out_bill_no
	byNo      map[string]string        // transfer_bill_no → key
	byPackage map[string]string        // package_info → key
	auths     map[string]*transferAuth // by merchant/out_authorization_no
	files     map[string][]byte        // receipt files by token
	advanced  time.Duration            // advance (tests)
	window    time.Time                // the second the rate counts are for
	counts    map[string]int           // creates per merchant in window
	limit     int                      // creates per merchant per second
}

func newTransfers(s *Server) *transfers {
	x := &transfers{clock: s.clock, merchants: s.merchants, delivery: s.delivery, fields: s.fields, core: s.core, url: s.URL}
	x.init()
	return x
}

func (x *transfers) init() {
	x.bills = make(map[string]*transferBill)
	x.byNo = make(map[string]string)
	x.byPackage = make(map[string]string)
	x.auths = make(map[string]*transferAuth)
	x.files = make(map[string][]byte)
	x.counts = make(map[string]int)
	x.limit = transferRateLimit
}

// transferNow is the transfer part's clock: the sandbox clock plus what
// advance added.
func (x *transfers) transferNow() time.Time {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.transferNowLocked()
}

func (x *transfers) transferNowLocked() time.Time { return x.clock.now().Add(x.advanced) }

// advance moves the transfer part's clock forward by d, without skewing
// anything the sandbox signs, and closes what is then overdue: a bill
// still WAIT_USER_CONFIRM 24 hours after it was made becomes FAIL
// (fail_reason OVERDUE_CLOSE) and its MCHTRANSFER.BILL.FINISHED
// notification is sent, as WeChat Pay does when the user never confirms.
// (Any access to the part closes what is overdue by then.)

func (x *transfers) advance(d time.Duration) {
	x.mu.Lock()
	x.advanced += d
	x.mu.Unlock()
	x.expireTransfers()
}

// expireTransfers fails the bills whose window has passed and notifies.
func (x *transfers) expireTransfers() {
	now := x.transferNow()
	var ns []notice
	x.mu.Lock()
	for _, b := range x.bills {
		if b.State == transferWaiting && !now.Before(b.Created.Add(transferWindow)) {
			b.State, b.FailReason, b.Updated = transferFail, "OVERDUE_CLOSE", now
			ns = append(ns, b.notice())
		}
	}
	x.mu.Unlock()
	for _, n := range ns {
		x.notifyTransfer(n)
	}
}

// notifyTransfer delivers n, unless the request gave no notify_url.
func (x *transfers) notifyTransfer(n notice) {
	if n.url != "" {
		x.delivery.send(n)
	}
}

func (b *transferBill) key() string { return b.Owner + "/" + b.OutBillNo }

// notice is the MCHTRANSFER.BILL.FINISHED notification of b.
func (b *transferBill) notice() notice {
	return notice{eventType: "MCHTRANSFER.BILL.FINISHED", merchant: b.Merchant, outTradeNo: b.OutBillNo,
		url: b.NotifyURL, resource: b.json(false)}
}

// json is b as the answers show it; withName adds user_name (encrypted by
// the caller).
func (b *transferBill) json(withName bool) map[string]any {
	m := map[string]any{
		"out_bill_no":      b.OutBillNo,
		"transfer_bill_no": b.TransferBillNo,
		"appid":            b.AppID,
		"state":            b.State,
		"transfer_amount":  b.Amount,
		"transfer_remark":  b.Remark,
		"openid":           b.OpenID,
		"create_time":      b.Created.In(beijing).Format(time.RFC3339),
		"update_time":      b.Updated.In(beijing).Format(time.RFC3339),
	}
	if b.Partner {
		m["mch_id"], m["sub_mchid"] = b.Merchant, b.Owner
	} else {
		m["mch_id"] = b.Owner
	}
	if b.FailReason != "" {
		m["fail_reason"] = b.FailReason
	}
	return m
}

var outBillNoRE = regexp.MustCompile(`^[0-9A-Za-z]{1,32}$`)

var (
	errTransferNotFound  = &simError{http.StatusNotFound, "NOT_FOUND", "记录不存在", nil}
	errTransferDuplicate = &simError{http.StatusBadRequest, "INVALID_REQUEST", "单号已存在但信息不一致,请查单后比较确认", nil}
	errTransferFrequency = &simError{http.StatusTooManyRequests, "FREQUENCY_LIMITED", "频率超限，请降低请求频率", nil}
	errTransferSerial    = &simError{http.StatusBadRequest, "PARAM_ERROR", msgRequestSerial, nil}
)

type transferRequest struct {
	SubMchID           string `json:"sub_mchid"`
	AppID              string `json:"appid"`
	OutBillNo          string `json:"out_bill_no"`
	TransferSceneID    string `json:"transfer_scene_id"`
	OpenID             string `json:"openid"`
	UserName           string `json:"user_name"`
	TransferAmount     *int64 `json:"transfer_amount"`
	TransferRemark     string `json:"transfer_remark"`
	NotifyURL          string `json:"notify_url"`
	UserRecvPerception string `json:"user_recv_perception"`
	Reports            []struct {
		InfoType    string `json:"info_type"`
		InfoContent string `json:"info_content"`
	} `json:"transfer_scene_report_infos"`
	AuthorizationInfo *struct {
		OutAuthorizationNo     string `json:"out_authorization_no"`
		UserDisplayName        string `json:"user_display_name"`
		AuthorizationNotifyURL string `json:"authorization_notify_url"`
	} `json:"authorization_info"`
}

// decryptRequestField decrypts an encrypted field of r as WeChat Pay does:
// with the key the request's Wechatpay-Serial names. A serial naming no
// valid key of the merchant is 400 PARAM_ERROR "平台证书序列号
// Wechatpay-Serial错误" (docs/protocol.md §7); a field that does not
// decrypt with that key, such as one sent in clear, is 400 PARAM_ERROR
// naming the field.
func (x *transfers) decryptRequestField(r *http.Request, field, ciphertext string) (string, *simError) {
	m := x.merchants.get(MerchantIDFrom(r.Context()))
	if x.fields.ca.decryptionKey(m, r.Header.Get(wire.HeaderSerial), time.Now()) == nil {
		return "", errTransferSerial
	}
	pt, err := x.fields.decrypt(r, ciphertext)
	if err != nil {
		return "", paramError("/"+field, field+"解密失败，请使用Wechatpay-Serial对应的公钥加密", nil)
	}
	return pt, nil
}

// validateTransfer checks a create request as WeChat Pay does and returns
// the bill it would make.
func (x *transfers) validateTransfer(r *http.Request, partner bool) (*transferBill, *transferRequest, *simError) {
	caller := MerchantIDFrom(r.Context())
	var req transferRequest
	if err := decodeObject(bodyOf(r), &req); err != nil {
		return nil, nil, err
	}
	b := &transferBill{Merchant: caller, Owner: caller, Partner: partner}
	if partner {
		if req.SubMchID == "" {
			return nil, nil, paramError("/sub_mchid", "缺少必填参数sub_mchid", nil)
		}
		b.Owner = req.SubMchID
	} else if req.SubMchID != "" {
		return nil, nil, paramError("/sub_mchid", "普通商户不能传入sub_mchid", req.SubMchID)
	}
	for _, f := range []struct{ name, v string }{{"appid", req.AppID}, {"out_bill_no", req.OutBillNo},
		{"transfer_scene_id", req.TransferSceneID}, {"openid", req.OpenID}, {"transfer_remark", req.TransferRemark}} {
		if f.v == "" {
			return nil, nil, paramError("/"+f.name, "缺少必填参数"+f.name, nil)
		}
	}
	if !outBillNoRE.MatchString(req.OutBillNo) {
		return nil, nil, paramError("/out_bill_no", "out_bill_no只能由数字、大小写字母组成,最长32位", req.OutBillNo)
	}
	if utf8.RuneCountInString(req.TransferRemark) > 32 {
		return nil, nil, paramError("/transfer_remark", "transfer_remark最多32个字符", nil)
	}
	if req.TransferAmount == nil {
		return nil, nil, paramError("/transfer_amount", "缺少必填参数transfer_amount", nil)
	}
	if *req.TransferAmount <= 0 {
		return nil, nil, paramError("/transfer_amount", "转账金额必须大于0", *req.TransferAmount)
	}
	if req.NotifyURL != "" {
		if err := checkNotifyURL("/notify_url", req.NotifyURL); err != nil {
			return nil, nil, err
		}
	}
	if req.UserName != "" {
		name, err := x.decryptRequestField(r, "user_name", req.UserName)
		if err != nil {
			return nil, nil, err
		}
		b.UserName = name
	}
	if *req.TransferAmount >= userNameThreshold && b.UserName == "" {
		return nil, nil, paramError("/user_name", "转账金额 >= 2,000元时,user_name必填", nil)
	}
	b.AppID, b.OutBillNo, b.SceneID, b.OpenID = req.AppID, req.OutBillNo, req.TransferSceneID, req.OpenID
	b.Amount, b.Remark, b.NotifyURL = *req.TransferAmount, req.TransferRemark, req.NotifyURL
	// The fingerprint holds the decrypted name: its ciphertext differs at
	// every encryption.
	req.UserName = b.UserName
	canon, _ := json.Marshal(req)
	sum := sha256.Sum256(canon)
	b.Fingerprint = hex.EncodeToString(sum[:])
	return b, &req, nil
}

// allowCreate counts a create call of merchant against the rate limit.
func (x *transfers) allowCreate(merchant string, now time.Time) bool {
	sec := now.Truncate(time.Second)
	if !sec.Equal(x.window) {
		x.window = sec
		clear(x.counts)
	}
	x.counts[merchant]++
	return x.counts[merchant] <= x.limit
}

// newPackage returns a package_info: opaque, Base64 like WeChat Pay's.
func newPackage() string {
	var b [48]byte
	rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// Kinds of create.
const (
	createConfirm       = iota // a bill the user confirms
	createPreAuthorized        // the same, asking for 免确认收款授权 too
	createAuthorized           // a bill paid at once to a user who granted it
)

var (
	errTransferNotAuthorized = &simError{http.StatusForbidden, "NO_AUTH", "收款用户未开通免确认收款授权", nil}
	errAuthorizationInfo     = paramError("/authorization_info", "缺少必填参数authorization_info", nil)
)

func (x *transfers) serveTransferCreate(partner bool, kind int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		x.expireTransfers()
		now := x.transferNow()
		x.mu.Lock()
		ok := x.allowCreate(MerchantIDFrom(r.Context()), now)
		x.mu.Unlock()
		if !ok {
			writeSimError(w, errTransferFrequency)
			return
		}
		b, req, serr := x.validateTransfer(r, partner)
		if serr == nil && kind == createPreAuthorized {
			ai := req.AuthorizationInfo
			if ai == nil || ai.OutAuthorizationNo == "" || ai.UserDisplayName == "" || ai.AuthorizationNotifyURL == "" {
				serr = errAuthorizationInfo
			}
		}
		if serr != nil {
			writeSimError(w, serr)
			return
		}
		var ns []notice
		x.mu.Lock()
		if old := x.bills[b.key()]; old != nil {
			if old.Fingerprint != b.Fingerprint || old.Merchant != b.Merchant {
				x.mu.Unlock()
				writeSimError(w, errTransferDuplicate)
				return
			}
			b = old // the same request again: the same bill
		} else {
			if kind == createAuthorized && !x.authorizedLocked(b) {
				x.mu.Unlock()
				writeSimError(w, errTransferNotAuthorized)
				return
			}
			// ACCEPTED, then at once (the sandbox's funds never run
			// short) WAIT_USER_CONFIRM, or for an authorised user SUCCESS.
			b.State, b.Created, b.Updated = transferAccepted, now, now
			b.TransferBillNo = "1330" + randomDigits(30)
			if kind == createAuthorized {
				b.State = transferSuccess
				ns = append(ns, b.notice())
			} else {
				b.State, b.Package = transferWaiting, newPackage()
				x.byPackage[b.Package] = b.key()
			}
			if kind == createPreAuthorized {
				ai := req.AuthorizationInfo
				a := &transferAuth{Merchant: b.Merchant, OutAuthorizationNo: ai.OutAuthorizationNo, AppID: b.AppID, OpenID: b.OpenID,
					SceneID: b.SceneID, NotifyURL: ai.AuthorizationNotifyURL, State: transferWaiting, Package: b.Package,
					Created: now, Updated: now}
				b.Authorization = a.key()
				if x.auths[a.key()] == nil {
					x.auths[a.key()] = a
				}
			}
			x.bills[b.key()] = b
			x.byNo[b.TransferBillNo] = b.key()
		}
		out := map[string]any{"out_bill_no": b.OutBillNo, "transfer_bill_no": b.TransferBillNo,
			"create_time": b.Created.In(beijing).Format(time.RFC3339), "state": b.State}
		if b.State == transferWaiting {
			out["package_info"] = b.Package
		}
		if b.FailReason != "" {
			out["fail_reason"] = b.FailReason
		}
		x.mu.Unlock()
		writeJSON(w, out)
		for _, n := range ns {
			x.notifyTransfer(n)
		}
	}
}

// authorizedLocked reports whether b's user granted b's merchant
// 免确认收款授权 for b's appid.
func (x *transfers) authorizedLocked(b *transferBill) bool {
	for _, a := range x.auths {
		if a.Merchant == b.Merchant && a.OpenID == b.OpenID && a.AppID == b.AppID && a.State == authorizationConfirmed {
			return true
		}
	}
	return false
}

// authorizationConfirmed is the state of a granted authorisation in the
// sandbox; WeChat Pay's name for it is not confirmed (docs/protocol.md §14).
const authorizationConfirmed = "CONFIRMED"

func (a *transferAuth) key() string { return a.Merchant + "/" + a.OutAuthorizationNo }

// confirmAuthorization grants the 免确认收款授权 with key k (merchant/
// out_authorization_no) as the user would in WeChat, and sends
// MCHTRANSFER.AUTHORIZATION.CONFIRMED to its notify URL; a non-empty
// caller must be its merchant. The user can then be paid with POST
// /v3/fund-app/mch-transfer/transfer-bills/transfer.
func (x *transfers) confirmAuthorization(k, caller string) (map[string]any, *simError) {
	x.mu.Lock()
	if a := x.auths[k]; a == nil || (caller != "" && a.Merchant != caller) {
		x.mu.Unlock()
		return nil, errTransferNotFound
	}
	n, serr := x.confirmAuthorizationLocked(k, x.transferNowLocked())
	var out map[string]any
	if serr == nil {
		out = x.auths[k].json()
	}
	x.mu.Unlock()
	if serr != nil {
		return nil, serr
	}
	x.notifyTransfer(*n)
	return out, nil
}

func (x *transfers) confirmAuthorizationLocked(k string, now time.Time) (*notice, *simError) {
	a := x.auths[k]
	switch {
	case a == nil:
		return nil, errTransferNotFound
	case a.State != transferWaiting:
		return nil, &simError{http.StatusBadRequest, "INVALID_REQUEST", "授权状态为" + a.State + "，不能确认", nil}
	}
	a.State, a.Updated = authorizationConfirmed, now
	return &notice{eventType: "MCHTRANSFER.AUTHORIZATION.CONFIRMED", merchant: a.Merchant, outTradeNo: a.OutAuthorizationNo,
		url: a.NotifyURL, resource: a.json()}, nil
}

// transferOwner returns the owner of the bills a request may see: the
// caller, or for a partner route the sub_mchid of the query or body.
func transferOwner(r *http.Request, partner bool, sub string) (string, *simError) {
	caller := MerchantIDFrom(r.Context())
	if !partner {
		return caller, nil
	}
	if sub == "" {
		return "", paramError("sub_mchid", "缺少必填参数sub_mchid", nil)
	}
	return sub, nil
}

// lookupLocked returns the bill with key k if caller may see it.
func (x *transfers) lookupLocked(k, caller string, partner bool) *transferBill {
	b := x.bills[k]
	if b == nil || b.Merchant != caller || b.Partner != partner {
		return nil
	}
	return b
}

func (x *transfers) serveTransferQuery(partner, byNo bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		x.expireTransfers()
		caller := MerchantIDFrom(r.Context())
		owner, serr := transferOwner(r, partner, r.URL.Query().Get("sub_mchid"))
		if serr != nil {
			writeSimError(w, serr)
			return
		}
		x.mu.Lock()
		k := owner + "/" + r.PathValue("no")
		if byNo {
			k = x.byNo[r.PathValue("id")]
		}
		b := x.lookupLocked(k, caller, partner)
		if b != nil && b.Owner != owner {
			b = nil
		}
		var out map[string]any
		var name string
		if b != nil {
			out, name = b.json(true), b.UserName
		}
		x.mu.Unlock()
		if out == nil {
			writeSimError(w, errTransferNotFound)
			return
		}
		if name != "" {
			ct, err := x.fields.encrypt(caller, name)
			if err != nil {
				writeSimError(w, errSystem)
				return
			}
			out["user_name"] = ct
		}
		writeJSON(w, out)
	}
}

func (x *transfers) serveTransferCancel(partner bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		x.expireTransfers()
		caller := MerchantIDFrom(r.Context())
		var req struct {
			SubMchID string `json:"sub_mchid"`
		}
		if body := bodyOf(r); len(strings.TrimSpace(string(body))) > 0 { // a body is optional
			if serr := decodeObject(body, &req); serr != nil {
				writeSimError(w, serr)
				return
			}
		}
		owner, serr := transferOwner(r, partner, req.SubMchID)
		if serr != nil {
			writeSimError(w, serr)
			return
		}
		now := x.transferNow()
		x.mu.Lock()
		b := x.lookupLocked(owner+"/"+r.PathValue("no"), caller, partner)
		var n *notice
		state := ""
		switch {
		case b == nil:
			serr = errTransferNotFound
		case b.State == transferCanceled:
			state = transferCanceled
		case b.State == transferSuccess || b.State == transferFail:
			serr = &simError{http.StatusBadRequest, "INVALID_REQUEST", "转账单已是终态，不能撤销", nil}
		default:
			// Accepted: CANCELING in the answer, CANCELLED at once after,
			// as a query shows ("以最终查询单据返回状态为准").
			b.State, b.Updated, state = transferCanceled, now, "CANCELING"
			nb := b.notice()
			n = &nb
		}
		var out map[string]any
		if b != nil && serr == nil {
			out = map[string]any{"out_bill_no": b.OutBillNo, "transfer_bill_no": b.TransferBillNo, "state": state,
				"update_time": b.Updated.In(beijing).Format(time.RFC3339)}
			if partner {
				out["sub_mchid"] = b.Owner
			}
		}
		x.mu.Unlock()
		if serr != nil {
			writeSimError(w, serr)
			return
		}
		writeJSON(w, out)
		if n != nil {
			x.notifyTransfer(*n)
		}
	}
}

// transferResult is how the user's confirmation of a transfer ends.
type transferResult int

const (
	// transferConfirmed: the user confirms; the bill becomes SUCCESS and
	// MCHTRANSFER.BILL.FINISHED is sent.
	transferConfirmed transferResult = iota
	// transferFails: the payout fails after the user confirmed (for
	// example the real name does not match); the bill becomes FAIL with
	// fail_reason and MCHTRANSFER.BILL.FINISHED is sent.
	transferFails
)

func (x *transfers) confirmTransfer(k, caller string, result transferResult) (map[string]any, *simError) {
	x.expireTransfers()
	now := x.transferNow()
	x.mu.Lock()
	b := x.bills[k]
	if b == nil || (caller != "" && b.Merchant != caller) {
		x.mu.Unlock()
		return nil, errTransferNotFound
	}
	if b.State != transferWaiting {
		x.mu.Unlock()
		return nil, &simError{http.StatusBadRequest, "INVALID_REQUEST", "转账单状态为" + b.State + "，不能确认收款", nil}
	}
	b.Updated = now
	var an *notice
	if result == transferFails {
		b.State, b.FailReason = transferFail, "NAME_NOT_CORRECT"
	} else {
		b.State = transferSuccess
		if b.Authorization != "" { // the user also granted what the pre-transfer asked
			an, _ = x.confirmAuthorizationLocked(b.Authorization, now)
		}
	}
	n, out := b.notice(), b.json(false)
	x.mu.Unlock()
	x.notifyTransfer(n)
	if an != nil {
		x.notifyTransfer(*an)
	}
	return out, nil
}

// ConfirmTransferPath is the sandbox's control endpoint that confirms a
// transfer as the user would ("wechatpay confirm-transfer" uses it). The
// request is authenticated; its JSON body is
//
//	{"out_bill_no":"...","sub_mchid":"...","result":"SUCCESS"}
//
// with sub_mchid for a service provider's bill only and result SUCCESS
// (the default) or FAIL. The answer is the bill as the query shows it
// (without user_name), or WeChat Pay's error JSON. With
// {"out_authorization_no":"..."} instead it grants that 免确认收款授权 and
// answers the authorisation.
const ConfirmTransferPath = "/sandbox/confirm-transfer"

func (x *transfers) serveConfirmTransferControl(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OutBillNo          string `json:"out_bill_no"`
		OutAuthorizationNo string `json:"out_authorization_no"`
		SubMchID           string `json:"sub_mchid"`
		Result             string `json:"result"`
	}
	if serr := decodeObject(bodyOf(r), &req); serr != nil {
		writeSimError(w, serr)
		return
	}
	caller := MerchantIDFrom(r.Context())
	if req.OutAuthorizationNo != "" && req.OutBillNo == "" {
		out, serr := x.confirmAuthorization(caller+"/"+req.OutAuthorizationNo, caller)
		if serr != nil {
			writeSimError(w, serr)
			return
		}
		writeJSON(w, out)
		return
	}
	if req.OutBillNo == "" {
		writeSimError(w, paramError("/out_bill_no", "缺少必填参数out_bill_no或out_authorization_no", nil))
		return
	}
	result := transferConfirmed
	switch req.Result {
	case "", transferSuccess:
	case transferFail:
		result = transferFails
	default:
		writeSimError(w, paramError("/result", "result应为SUCCESS或FAIL", req.Result))
		return
	}
	owner := caller
	if req.SubMchID != "" {
		owner = req.SubMchID
	}
	out, serr := x.confirmTransfer(owner+"/"+req.OutBillNo, caller, result)
	if serr != nil {
		writeSimError(w, serr)
		return
	}
	writeJSON(w, out)
}

// Electronic receipts: a SUCCESS bill that carried user_name may have one;
// it is FINISHED at the first query after the apply.

func (x *transfers) serveReceiptApply(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OutBillNo string `json:"out_bill_no"`
	}
	if serr := decodeObject(bodyOf(r), &req); serr != nil {
		writeSimError(w, serr)
		return
	}
	caller := MerchantIDFrom(r.Context())
	now := x.transferNow()
	x.mu.Lock()
	defer x.mu.Unlock()
	b := x.lookupLocked(caller+"/"+req.OutBillNo, caller, false)
	switch {
	case b == nil:
		writeSimError(w, errTransferNotFound)
		return
	case b.State != transferSuccess || b.UserName == "":
		writeSimError(w, &simError{http.StatusBadRequest, "INVALID_REQUEST", "仅支持付款成功且传入姓名的转账单据申请电子回单", nil})
		return
	}
	if b.Receipt == "" {
		b.Receipt = "GENERATING"
	}
	writeJSON(w, map[string]any{"out_bill_no": b.OutBillNo, "state": b.Receipt,
		"create_time": now.In(beijing).Format(time.RFC3339)})
}

func (x *transfers) serveReceiptQuery(w http.ResponseWriter, r *http.Request) {
	caller := MerchantIDFrom(r.Context())
	now := x.transferNow()
	x.mu.Lock()
	defer x.mu.Unlock()
	b := x.lookupLocked(caller+"/"+r.PathValue("no"), caller, false)
	if b == nil || b.Receipt == "" {
		writeSimError(w, errTransferNotFound)
		return
	}
	if b.ReceiptToken == "" {
		file := []byte(fmt.Sprintf("%%PDF-1.4\n%% wechatpaytest electronic receipt\n%% out_bill_no %s transfer_bill_no %s amount %d fen\n",
			b.OutBillNo, b.TransferBillNo, b.Amount))
		b.ReceiptToken = randomText(32)
		x.files[b.ReceiptToken] = file
		b.Receipt = "FINISHED"
	}
	sum := sha256.Sum256(x.files[b.ReceiptToken])
	writeJSON(w, map[string]any{"out_bill_no": b.OutBillNo, "state": b.Receipt,
		"create_time": now.In(beijing).Format(time.RFC3339), "update_time": now.In(beijing).Format(time.RFC3339),
		"hash_type": "SHA256", "hash_value": strings.ToUpper(hex.EncodeToString(sum[:])),
		"download_url": x.url + receiptFilePath + "?token=" + url.QueryEscape(b.ReceiptToken)})
}

// serveReceiptFile serves a receipt file unsigned, as WeChat Pay does.
func (x *transfers) serveReceiptFile(w http.ResponseWriter, r *http.Request) {
	x.mu.Lock()
	file, ok := x.files[r.URL.Query().Get("token")]
	x.mu.Unlock()
	if !ok {
		x.core.writeError(w, r, x.core.merchantOf(r), http.StatusNotFound, "NOT_FOUND", "回单文件不存在或已过期", nil)
		return
	}
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Request-Id", newRequestID())
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(file)
	}
}

// 免确认收款授权: requested, then WAIT_USER_CONFIRM until the user acts
// (the sandbox has no page for it), or CLOSED by the merchant.

func (x *transfers) serveAuthorizationRequest(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OutAuthorizationNo     string `json:"out_authorization_no"`
		AppID                  string `json:"appid"`
		OpenID                 string `json:"openid"`
		TransferSceneID        string `json:"transfer_scene_id"`
		UserDisplayName        string `json:"user_display_name"`
		AuthorizationNotifyURL string `json:"authorization_notify_url"`
	}
	if serr := decodeObject(bodyOf(r), &req); serr != nil {
		writeSimError(w, serr)
		return
	}
	for _, f := range []struct{ name, v string }{{"out_authorization_no", req.OutAuthorizationNo}, {"appid", req.AppID},
		{"openid", req.OpenID}, {"transfer_scene_id", req.TransferSceneID}, {"user_display_name", req.UserDisplayName},
		{"authorization_notify_url", req.AuthorizationNotifyURL}} {
		if f.v == "" {
			writeSimError(w, paramError("/"+f.name, "缺少必填参数"+f.name, nil))
			return
		}
	}
	caller := MerchantIDFrom(r.Context())
	now := x.transferNow()
	x.mu.Lock()
	defer x.mu.Unlock()
	k := caller + "/" + req.OutAuthorizationNo
	a := x.auths[k]
	if a == nil {
		a = &transferAuth{Merchant: caller, OutAuthorizationNo: req.OutAuthorizationNo, AppID: req.AppID, OpenID: req.OpenID,
			SceneID: req.TransferSceneID, NotifyURL: req.AuthorizationNotifyURL, State: transferWaiting, Package: newPackage(),
			Created: now, Updated: now}
		x.auths[k] = a
	} else if a.OpenID != req.OpenID || a.AppID != req.AppID {
		writeSimError(w, errTransferDuplicate)
		return
	}
	writeJSON(w, a.json())
}

func (a *transferAuth) json() map[string]any {
	m := map[string]any{"out_authorization_no": a.OutAuthorizationNo, "appid": a.AppID, "openid": a.OpenID,
		"transfer_scene_id": a.SceneID, "state": a.State,
		"create_time": a.Created.In(beijing).Format(time.RFC3339), "update_time": a.Updated.In(beijing).Format(time.RFC3339)}
	if a.State == transferWaiting {
		m["package_info"] = a.Package
	}
	return m
}

func (x *transfers) serveAuthorization(closing bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		caller := MerchantIDFrom(r.Context())
		now := x.transferNow()
		x.mu.Lock()
		a := x.auths[caller+"/"+r.PathValue("no")]
		if a == nil {
			x.mu.Unlock()
			writeSimError(w, errTransferNotFound)
			return
		}
		var n *notice
		if closing && a.State != "CLOSED" {
			a.State, a.Updated = "CLOSED", now
			nn := notice{eventType: "MCHTRANSFER.AUTHORIZATION.CLOSED", merchant: a.Merchant, outTradeNo: a.OutAuthorizationNo,
				url: a.NotifyURL, resource: a.json()}
			n = &nn
		}
		out := a.json()
		x.mu.Unlock()
		writeJSON(w, out)
		if n != nil {
			x.notifyTransfer(*n)
		}
	}
}

// routes are the transfer part's routes.
func (x *transfers) routes() []route {
	const (
		bills   = "/v3/fund-app/mch-transfer/transfer-bills"
		partner = "/v3/fund-app/mch-transfer/partner/transfer-bills"
		auth    = "/v3/fund-app/mch-transfer/user-confirm-authorization"
	)
	return []route{
		{"POST " + bills, failable, x.serveTransferCreate(false, createConfirm)},
		{"POST " + partner, failable, x.serveTransferCreate(true, createConfirm)},
		{"POST " + bills + "/pre-transfer-with-authorization", failable, x.serveTransferCreate(false, createPreAuthorized)},
		{"POST " + bills + "/transfer", failable, x.serveTransferCreate(false, createAuthorized)},
		{"POST " + bills + "/out-bill-no/{no}/cancel", failable, x.serveTransferCancel(false)},
		{"POST " + partner + "/out-bill-no/{no}/cancel", failable, x.serveTransferCancel(true)},
		{"GET " + bills + "/out-bill-no/{no}", failable, x.serveTransferQuery(false, false)},
		{"GET " + partner + "/out-bill-no/{no}", failable, x.serveTransferQuery(true, false)},
		{"GET " + bills + "/transfer-bill-no/{id}", failable, x.serveTransferQuery(false, true)},
		{"GET " + partner + "/transfer-bill-no/{id}", failable, x.serveTransferQuery(true, true)},
		{"POST /v3/fund-app/mch-transfer/elecsign/out-bill-no", failable, x.serveReceiptApply},
		{"GET /v3/fund-app/mch-transfer/elecsign/out-bill-no/{no}", failable, x.serveReceiptQuery},
		{"GET " + receiptFilePath, raw, x.serveReceiptFile},
		{"POST " + auth, failable, x.serveAuthorizationRequest},
		{"GET " + auth + "/out-authorization-no/{no}", failable, x.serveAuthorization(false)},
		{"POST " + auth + "/out-authorization-no/{no}/close", failable, x.serveAuthorization(true)},
		{"POST " + ConfirmTransferPath, signed, x.serveConfirmTransferControl},
	}
}
