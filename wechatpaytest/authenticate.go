package wechatpaytest

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// maxBody bounds the request bodies the sandbox reads.
const maxBody = 8 << 20

// maxSkew is how far a request timestamp may be from the real time.
const maxSkew = 5 * time.Minute

// signErrorDetail is the detail of a SIGN_ERROR for a signature mismatch,
// shaped like WeChat Pay's (docs/protocol.md §8).
type signErrorDetail struct {
	Detail struct {
		Issue string `json:"issue"`
	} `json:"detail"`
	Field           string          `json:"field"`
	Location        string          `json:"location"`
	SignInformation signInformation `json:"sign_information"`
}

type signInformation struct {
	Method               string `json:"method"`
	SignMessageLength    int    `json:"sign_message_length"`
	TruncatedSignMessage string `json:"truncated_sign_message"`
	URL                  string `json:"url"`
}

// Messages of WeChat Pay's authentication errors. The first three are
// quoted from WeChat Pay; the others are worded for the sandbox.
const (
	msgNoAcceptOrUA    = "Http头缺少Accept或User-Agent"
	msgAuthFormat      = "Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》"
	msgTimestamp       = "Http头Authorization中的timestamp与发起请求的时间不得超过5分钟"
	msgUnknownMerchant = "商户号mchid不存在"
	msgMerchantSerial  = "商户证书序列号有误。请使用签名私钥匹配的证书序列号"
	msgBadSignature    = "错误的签名，验签失败"
	msgRequestSerial   = "平台证书序列号Wechatpay-Serial错误"
)

// authenticate checks a request as WeChat Pay does (docs/protocol.md §1,
// §8) and returns its merchant and body. On failure it has written the
// signed error response and returns ok == false.
func (c *core) authenticate(w http.ResponseWriter, r *http.Request) (m *merchant, body []byte, ok bool) {
	auth, authErr := wire.ParseAuthorization(r.Header.Get("Authorization"))
	if authErr == nil {
		m = c.merchants.lookup(auth.MerchantID) // also chooses the key that signs errors
	}
	fail := func(status int, code, msg string, detail any) (*merchant, []byte, bool) {
		c.writeError(w, r, m, status, code, msg, detail)
		return nil, nil, false
	}
	if r.Header.Get("Accept") == "" || r.Header.Get("User-Agent") == "" {
		return fail(http.StatusBadRequest, "INVALID_REQUEST", msgNoAcceptOrUA, nil)
	}
	if authErr != nil {
		return fail(http.StatusUnauthorized, "SIGN_ERROR", msgAuthFormat, nil)
	}
	ts, err := strconv.ParseInt(auth.Timestamp, 10, 64)
	if err != nil || strconv.FormatInt(ts, 10) != auth.Timestamp {
		return fail(http.StatusUnauthorized, "SIGN_ERROR", msgAuthFormat, nil)
	}
	if m == nil {
		return fail(http.StatusUnauthorized, "SIGN_ERROR", msgUnknownMerchant, nil)
	}
	if auth.Serial != m.info.CertificateSerial {
		return fail(http.StatusUnauthorized, "SIGN_ERROR", msgMerchantSerial, nil)
	}
	if d := c.clock.requestTime().Unix() - ts; d > int64(maxSkew/time.Second) || d < -int64(maxSkew/time.Second) {
		return fail(http.StatusUnauthorized, "SIGN_ERROR", msgTimestamp, nil)
	}
	body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if tooLarge := new(http.MaxBytesError); errors.As(err, &tooLarge) {
			return fail(http.StatusRequestEntityTooLarge, "INVALID_REQUEST", "请求体过大", nil)
		}
		return fail(http.StatusBadRequest, "INVALID_REQUEST", "读取请求体失败", nil)
	}
	signed := signedPart(r, body) // media uploads sign their meta JSON only
	msg := wire.RequestMessage(r.Method, r.RequestURI, ts, auth.Nonce, signed)
	if wire.Verify(&m.info.PrivateKey.PublicKey, msg, auth.Signature) != nil {
		d := signErrorDetail{Field: "signature", Location: "authorization"}
		d.Detail.Issue = "sign not match"
		d.SignInformation = signInformation{
			Method:               r.Method,
			SignMessageLength:    len(msg),
			TruncatedSignMessage: truncatedSignMessage(msg, signed),
			URL:                  r.RequestURI,
		}
		return fail(http.StatusUnauthorized, "SIGN_ERROR", msgBadSignature, d)
	}
	if serial := r.Header.Get(wire.HeaderSerial); serial != "" && !c.ca.hasKey(m, serial) {
		return fail(http.StatusBadRequest, "PARAM_ERROR", msgRequestSerial, nil)
	}
	return m, body, true
}

// truncatedSignMessage shortens the signing string the way WeChat Pay's
// SIGN_ERROR shows it: the four header lines whole, then only the start of
// the body line.
func truncatedSignMessage(msg, body []byte) string {
	const keep = 8
	if len(body) <= keep {
		return string(msg)
	}
	head := msg[:len(msg)-len(body)-1]
	return string(head) + string(body[:keep]) + "\n"
}
