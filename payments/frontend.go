package payments

import (
	"crypto"
	"crypto/rsa"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// Front-end payment parameters (docs/protocol.md §10). Both kinds are signed
// like an APIv3 request, SHA256withRSA (PKCS #1 v1.5) with the merchant's
// API private key over four lines, each ending in "\n":
//
//	JSAPI / mini-program: appId, timeStamp, nonceStr, package ("prepay_id=...")
//	App:                  appid, timestamp, noncestr, prepayid (bare)
//
// [pay.weixin.qq.com/docs/merchant/apis/mini-program-payment/mini-transfer-payment.html;
// jsapi/app-transfer-payment-signature pages]

// JSAPIParams are what a web page inside WeChat passes to
// WeixinJSBridge.invoke("getBrandWCPayRequest", ...) and a mini-program
// to wx.requestPayment (which ignores appId, though it is signed). The
// JSON tags are the names the front end expects.
type JSAPIParams struct {
	AppID     string `json:"appId"`
	TimeStamp string `json:"timeStamp"` // Unix seconds, as a string
	NonceStr  string `json:"nonceStr"`  // at most 32 characters
	Package   string `json:"package"`   // "prepay_id=" + the prepay_id
	SignType  string `json:"signType"`  // "RSA"; not signed
	PaySign   string `json:"paySign"`
}

// AppParams are what an App passes to the WeChat Open SDK (PayReq).
type AppParams struct {
	AppID     string `json:"appid"`
	PartnerID string `json:"partnerid"` // the merchant ID (sp_mchid for a service provider)
	PrepayID  string `json:"prepayid"`
	Package   string `json:"package"` // "Sign=WXPay"
	NonceStr  string `json:"noncestr"`
	TimeStamp string `json:"timestamp"`
	Signature string `json:"sign"`
}

// NewJSAPIParams returns the signed JSAPI / mini-program parameters for a
// prepay_id of an order placed for appID, with the current time and a
// fresh nonce.
func NewJSAPIParams(key crypto.Signer, appID, prepayID string) (*JSAPIParams, error) {
	p := &JSAPIParams{AppID: appID, Package: "prepay_id=" + prepayID}
	if prepayID == "" {
		return nil, errors.New("wechatpay/payments: JSAPI parameters: prepay_id is empty")
	}
	if err := p.Sign(key); err != nil {
		return nil, err
	}
	return p, nil
}

// Sign sets p.PaySign, signing AppID, TimeStamp, NonceStr and Package
// with key. It first sets an empty TimeStamp to now, an empty NonceStr to
// a fresh nonce and an empty SignType to "RSA"; set them beforehand to
// reproduce a given signature.
func (p *JSAPIParams) Sign(key crypto.Signer) error {
	if p.TimeStamp == "" {
		p.TimeStamp = strconv.FormatInt(time.Now().Unix(), 10)
	}
	if p.NonceStr == "" {
		p.NonceStr = wire.NewNonce()
	}
	if p.SignType == "" {
		p.SignType = "RSA"
	}
	if p.SignType != "RSA" {
		return fmt.Errorf("wechatpay/payments: JSAPI parameters: signType %q, want RSA", p.SignType)
	}
	if !strings.HasPrefix(p.Package, "prepay_id=") || len(p.Package) == len("prepay_id=") {
		return fmt.Errorf("wechatpay/payments: JSAPI parameters: package %.80q, want prepay_id=<prepay_id>", p.Package)
	}
	msg, err := frontMessage("JSAPI", [][2]string{{"appId", p.AppID}, {"timeStamp", p.TimeStamp}, {"nonceStr", p.NonceStr}, {"package", p.Package}})
	if err != nil {
		return err
	}
	sig, err := wire.Sign(key, msg)
	if err != nil {
		return err
	}
	p.PaySign = sig
	return nil
}

// Verify checks p.PaySign with the merchant's public key: what a front
// end developer debugging a paySign wants to know.
func (p *JSAPIParams) Verify(pub *rsa.PublicKey) error {
	msg, err := frontMessage("JSAPI", [][2]string{{"appId", p.AppID}, {"timeStamp", p.TimeStamp}, {"nonceStr", p.NonceStr}, {"package", p.Package}})
	if err != nil {
		return err
	}
	return wire.Verify(pub, msg, p.PaySign)
}

// NewAppParams returns the signed App parameters for a prepay_id of an
// order placed for appID by merchant partnerID, with the current time and
// a fresh nonce.
func NewAppParams(key crypto.Signer, appID, partnerID, prepayID string) (*AppParams, error) {
	p := &AppParams{AppID: appID, PartnerID: partnerID, PrepayID: prepayID}
	if err := p.Sign(key); err != nil {
		return nil, err
	}
	return p, nil
}

// Sign sets p.Signature, signing AppID, TimeStamp, NonceStr and PrepayID with
// key. It first sets an empty TimeStamp to now, an empty NonceStr to a
// fresh nonce and an empty Package to "Sign=WXPay".
func (p *AppParams) Sign(key crypto.Signer) error {
	if p.TimeStamp == "" {
		p.TimeStamp = strconv.FormatInt(time.Now().Unix(), 10)
	}
	if p.NonceStr == "" {
		p.NonceStr = wire.NewNonce()
	}
	if p.Package == "" {
		p.Package = "Sign=WXPay"
	}
	if p.PartnerID == "" {
		return errors.New("wechatpay/payments: App parameters: partnerid (the merchant ID) is empty")
	}
	msg, err := frontMessage("App", [][2]string{{"appid", p.AppID}, {"timestamp", p.TimeStamp}, {"noncestr", p.NonceStr}, {"prepayid", p.PrepayID}})
	if err != nil {
		return err
	}
	sig, err := wire.Sign(key, msg)
	if err != nil {
		return err
	}
	p.Signature = sig
	return nil
}

// Verify checks p.Signature with the merchant's public key.
func (p *AppParams) Verify(pub *rsa.PublicKey) error {
	msg, err := frontMessage("App", [][2]string{{"appid", p.AppID}, {"timestamp", p.TimeStamp}, {"noncestr", p.NonceStr}, {"prepayid", p.PrepayID}})
	if err != nil {
		return err
	}
	return wire.Verify(pub, msg, p.Signature)
}

// frontMessage builds the four-line message, refusing values that would
// make it ambiguous (a newline moves every later line) or that WeChat
// Pay's front end rejects.
func frontMessage(kind string, fields [][2]string) ([]byte, error) {
	var b strings.Builder
	for _, f := range fields {
		name, v := f[0], f[1]
		switch {
		case v == "":
			return nil, fmt.Errorf("wechatpay/payments: %s parameters: %s is empty", kind, name)
		case strings.ContainsAny(v, "\r\n"):
			return nil, fmt.Errorf("wechatpay/payments: %s parameters: %s contains a line break", kind, name)
		}
		switch strings.ToLower(name) {
		case "timestamp":
			if _, err := strconv.ParseUint(v, 10, 63); err != nil {
				return nil, fmt.Errorf("wechatpay/payments: %s parameters: %s %.20q is not Unix seconds", kind, name, v)
			}
		case "noncestr":
			if len(v) > 32 {
				return nil, fmt.Errorf("wechatpay/payments: %s parameters: %s is %d characters long, at most 32", kind, name, len(v))
			}
		}
		b.WriteString(v)
		b.WriteByte('\n')
	}
	return []byte(b.String()), nil
}
