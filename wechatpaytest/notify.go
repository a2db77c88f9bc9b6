package wechatpaytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// A NotifyOption changes a notification built by Server.Notify or
// Server.NotificationRequest.
type NotifyOption func(*notifyOptions)

type notifyOptions struct {
	merchant         string
	publicKey        bool
	probe            bool
	tsOffset         time.Duration
	serial           string
	tamperCiphertext bool
	tamperBody       bool
	apiv3Key         string
	id               string
	body             []byte
	client           *http.Client
}

// NotifyMerchant sends the notification for merchant id instead of the
// default merchant: it is encrypted with that merchant's APIv3 key and
// signed with that merchant's platform certificate or public key.
func NotifyMerchant(id string) NotifyOption { return func(o *notifyOptions) { o.merchant = id } }

// NotifyWithPublicKey signs the notification with the merchant's WeChat Pay
// public key (Wechatpay-Serial: PUB_KEY_ID_...) instead of its platform
// certificate, as WeChat Pay does for a growing share of callbacks while a
// merchant migrates. The server must have been created with WithPublicKey
// or PublicKeyOnly; in PublicKeyOnly mode every notification is signed with
// the public key anyway.
func NotifyWithPublicKey() NotifyOption { return func(o *notifyOptions) { o.publicKey = true } }

// NotifyProbe sends a signature probe instead of a signature:
// "WECHATPAY/SIGNTEST/" followed by random Base64, which must fail
// verification.
func NotifyProbe() NotifyOption { return func(o *notifyOptions) { o.probe = true } }

// NotifyTimestampOffset moves Wechatpay-Timestamp (and create_time) by d
// from the sandbox clock; the signature covers the moved timestamp, so
// only the skew check can reject it.
func NotifyTimestampOffset(d time.Duration) NotifyOption {
	return func(o *notifyOptions) { o.tsOffset = d }
}

// NotifySerial sends serial in Wechatpay-Serial while signing with the
// usual key, as if the notification were signed by a certificate or public
// key the merchant does not have yet.
func NotifySerial(serial string) NotifyOption { return func(o *notifyOptions) { o.serial = serial } }

// NotifyTamperCiphertext flips one bit of the encrypted resource before
// signing: the signature verifies, the decryption fails.
func NotifyTamperCiphertext() NotifyOption {
	return func(o *notifyOptions) { o.tamperCiphertext = true }
}

// NotifyTamperBody flips one bit of the body after signing: the signature
// does not verify.
func NotifyTamperBody() NotifyOption { return func(o *notifyOptions) { o.tamperBody = true } }

// NotifyAPIv3Key encrypts the resource with key (32 bytes) instead of the
// merchant's APIv3 key: the signature verifies, the decryption fails.
func NotifyAPIv3Key(key string) NotifyOption { return func(o *notifyOptions) { o.apiv3Key = key } }

// NotifyID sets the notification's id instead of a random one, to send
// the same notification twice as WeChat Pay does when it retries.
func NotifyID(id string) NotifyOption { return func(o *notifyOptions) { o.id = id } }

// NotifyBody sends body, correctly signed, instead of the notification
// JSON; eventType and resource are then ignored. Use it to send signed
// bodies that are not well-formed notifications.
func NotifyBody(body []byte) NotifyOption {
	return func(o *notifyOptions) { o.body = bytes.Clone(body) }
}

// NotifyClient makes Notify send with c instead of a client that uses
// http.DefaultTransport and does not follow redirects.
func NotifyClient(c *http.Client) NotifyOption { return func(o *notifyOptions) { o.client = c } }

// notification is the JSON WeChat Pay posts (docs/protocol.md §6), fields in
// WeChat Pay's order.
type notification struct {
	ID           string               `json:"id"`
	CreateTime   string               `json:"create_time"`
	ResourceType string               `json:"resource_type"`
	EventType    string               `json:"event_type"`
	Summary      string               `json:"summary"`
	Resource     notificationResource `json:"resource"`
}

type notificationResource struct {
	OriginalType   string `json:"original_type"`
	Algorithm      string `json:"algorithm"`
	Ciphertext     string `json:"ciphertext"`
	AssociatedData string `json:"associated_data"`
	Nonce          string `json:"nonce"`
}

// notifier builds signed, encrypted notifications for the server's
// merchants.
type notifier struct {
	clock     *simClock
	merchants *merchants
	ca        *authority
	mixed     bool // Migrating: notifications alternate between the two keys

	signed atomic.Uint64 // notifications signed so far, for mixed
}

func notifyOpts(opts []NotifyOption) *notifyOptions {
	o := new(notifyOptions)
	for _, opt := range opts {
		opt(o)
	}
	return o
}

// request builds the request of a notification; see
// Server.NotificationRequest.
func (nt *notifier) request(ctx context.Context, url, eventType string, resource any, o *notifyOptions) (*http.Request, error) {
	id := o.merchant
	if id == "" {
		id = nt.merchants.defaultID
	}
	m := nt.merchants.get(id)
	now := nt.clock.now().Add(o.tsOffset)

	body := o.body
	if body == nil {
		var err error
		if body, err = notificationBody(m, now, eventType, resource, o); err != nil {
			return nil, err
		}
	}

	reqSerial := ""
	switch {
	case o.publicKey:
		if m.publicKey == nil {
			return nil, errors.New("wechatpaytest: NotifyWithPublicKey: the server has no public keys (create it with WithPublicKey)")
		}
		reqSerial = m.info.PublicKeyID
	case nt.mixed && nt.signed.Add(1)%2 == 1:
		reqSerial = m.info.PublicKeyID
	}
	serial, key := nt.ca.responseKey(m, reqSerial)
	ts := strconv.FormatInt(now.Unix(), 10)
	nonce := wire.NewNonce()
	sig, err := wire.Sign(key, wire.ResponseMessage(ts, nonce, body))
	if err != nil {
		return nil, err
	}
	if o.probe {
		sig = probeSignature()
	}
	if o.serial != "" {
		serial = o.serial
	}
	if o.tamperBody {
		body = tamper(body)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("wechatpaytest: notify: %w", err)
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Mozilla/4.0 (wechatpaytest notification)")
	setSignature(h, ts, nonce, sig, serial)
	return req, nil
}

// notificationBody encrypts resource for m and wraps it in the
// notification JSON.
func notificationBody(m *merchant, now time.Time, eventType string, resource any, o *notifyOptions) ([]byte, error) {
	if eventType == "" {
		eventType = "TRANSACTION.SUCCESS"
	}
	if resource == nil {
		if isRefundEvent(eventType) {
			resource = RefundResource(m.info)
		} else {
			resource = PaymentResource(m.info)
		}
	}
	var plaintext []byte
	switch r := resource.(type) {
	case []byte:
		plaintext = r
	case json.RawMessage:
		plaintext = r
	default:
		var err error
		if plaintext, err = json.Marshal(resource); err != nil {
			return nil, fmt.Errorf("wechatpaytest: notify: resource: %w", err)
		}
	}

	aead := m.aead
	if o.apiv3Key != "" {
		var err error
		if aead, err = wire.NewAEAD(o.apiv3Key); err != nil {
			return nil, fmt.Errorf("wechatpaytest: NotifyAPIv3Key: %w", err)
		}
	}
	originalType := originalTypeOf(eventType)
	nonce := randomText(12)
	ct, err := wire.Seal(aead, nonce, originalType, plaintext)
	if err != nil {
		return nil, err
	}
	if o.tamperCiphertext {
		raw, _ := base64.StdEncoding.DecodeString(ct) // just encoded
		raw[len(raw)/2] ^= 0x01
		ct = base64.StdEncoding.EncodeToString(raw)
	}
	id := o.id
	if id == "" {
		id = newNotificationID()
	}
	return json.Marshal(notification{
		ID:           id,
		CreateTime:   now.In(beijing).Format(time.RFC3339),
		ResourceType: "encrypt-resource",
		EventType:    eventType,
		Summary:      summaryOf(eventType),
		Resource: notificationResource{
			OriginalType:   originalType,
			Algorithm:      "AEAD_AES_256_GCM",
			Ciphertext:     ct,
			AssociatedData: originalType,
			Nonce:          nonce,
		},
	})
}

func isRefundEvent(eventType string) bool { return strings.HasPrefix(eventType, "REFUND.") }

// originalTypeOf names the resource type of an event, as WeChat Pay's
// original_type does: "transaction" for TRANSACTION.*, "refund" for
// REFUND.*, otherwise the lower-cased part before the first dot.
func originalTypeOf(eventType string) string {
	prefix, _, _ := strings.Cut(eventType, ".")
	switch prefix {
	case "SECURITY_ECHO":
		return "security"
	case "MCHTRANSFER": // docs/protocol.md §14
		return "mch_payment"
	}
	return strings.ToLower(prefix)
}

var summaries = map[string]string{
	"TRANSACTION.SUCCESS":       "支付成功",
	"REFUND.SUCCESS":            "退款成功",
	"REFUND.ABNORMAL":           "退款异常",
	"REFUND.CLOSED":             "退款关闭",
	"SECURITY_ECHO.SUCCESS":     "回调测试",
	"MCHTRANSFER.BILL.FINISHED": "商家转账单据终态通知",
}

func summaryOf(eventType string) string {
	if s, ok := summaries[eventType]; ok {
		return s
	}
	return "通知"
}

// newNotificationID returns a random UUID (version 4), the form of WeChat
// Pay's notification ids.
func newNotificationID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// PaymentResource returns the decrypted payload of a TRANSACTION.SUCCESS
// notification for merchant m: a paid JSAPI order of 1.00 CNY (100 fen)
// with random out_trade_no and transaction_id, paid now.
func PaymentResource(m Merchant) map[string]any {
	return map[string]any{
		"appid":            "wxd678efh567hg6787",
		"mchid":            m.ID,
		"out_trade_no":     "T" + randomDigits(20),
		"transaction_id":   "4200" + randomDigits(24),
		"trade_type":       "JSAPI",
		"trade_state":      "SUCCESS",
		"trade_state_desc": "支付成功",
		"bank_type":        "CMC",
		"attach":           "",
		"success_time":     time.Now().In(beijing).Format(time.RFC3339),
		"payer":            map[string]any{"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
		"amount": map[string]any{
			"total":          100,
			"payer_total":    100,
			"currency":       "CNY",
			"payer_currency": "CNY",
		},
	}
}

// RefundResource returns the decrypted payload of a REFUND.SUCCESS
// notification for merchant m: a full refund of a 1.00 CNY order with
// random order and refund numbers, refunded now.
func RefundResource(m Merchant) map[string]any {
	return map[string]any{
		"mchid":                 m.ID,
		"out_trade_no":          "T" + randomDigits(20),
		"transaction_id":        "4200" + randomDigits(24),
		"out_refund_no":         "R" + randomDigits(20),
		"refund_id":             "5030" + randomDigits(25),
		"refund_status":         "SUCCESS",
		"success_time":          time.Now().In(beijing).Format(time.RFC3339),
		"user_received_account": "招商银行信用卡0403",
		"amount": map[string]any{
			"total":        100,
			"refund":       100,
			"payer_total":  100,
			"payer_refund": 100,
		},
	}
}

// Notify sends a callback notification to url as WeChat Pay does and
// returns the merchant's answer; the caller closes its body. eventType
// defaults to "TRANSACTION.SUCCESS". resource is the payload before
// encryption: it is marshalled to JSON, except a []byte or a
// json.RawMessage, which is the JSON itself; nil means a sample payload
// for the merchant, RefundResource for REFUND.* events and PaymentResource
// otherwise. See NotificationRequest for how the notification is built.
// The error is that of building the request or of the HTTP client.
func (s *Server) Notify(ctx context.Context, url, eventType string, resource any, opts ...NotifyOption) (*http.Response, error) {
	o := notifyOpts(opts)
	req, err := s.notes.request(ctx, url, eventType, resource, o)
	if err != nil {
		return nil, err
	}
	c := o.client
	if c == nil {
		c = noRedirects
	}
	return c.Do(req)
}

// NotificationRequest builds, without sending, the request Notify sends:
// a POST of the notification JSON (a UUID-like id, create_time in +08:00,
// resource_type "encrypt-resource", a summary) whose resource is encrypted
// with AEAD_AES_256_GCM under the merchant's APIv3 key, a random
// 12-character nonce and associated_data naming the resource type, signed
// with the merchant's current platform certificate (or public key) and the
// sandbox clock, with the Wechatpay-Timestamp, -Nonce, -Signature, -Serial
// and -Signature-Type headers. Use it to drive a handler directly, for
// example with an httptest.ResponseRecorder. It panics if the merchant of
// NotifyMerchant does not exist.
func (s *Server) NotificationRequest(ctx context.Context, url, eventType string, resource any, opts ...NotifyOption) (*http.Request, error) {
	return s.notes.request(ctx, url, eventType, resource, notifyOpts(opts))
}
