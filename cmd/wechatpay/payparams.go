package main

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/wxpaykit/wechatpay/payments"
)

var payparamsHelp = help{
	synopsis: "payparams -kind jsapi|app -appid APPID -prepay-id PREPAY_ID [-timestamp T] [-nonce N] [flags]",
	text: `Prints, as JSON, the signed parameters a front end needs to start a payment
for a prepay_id: for -kind jsapi (web page in WeChat, mini-program) appId,
timeStamp, nonceStr, package ("prepay_id=..."), signType and paySign, for
WeixinJSBridge / wx.requestPayment; for -kind app appid, partnerid, prepayid,
package ("Sign=WXPay"), noncestr, timestamp and sign, for the App SDK.

The signature is SHA256withRSA with the merchant private key (-key) over four
lines: appid, timestamp, nonce and, for jsapi, "prepay_id=" and the prepay_id,
for app the bare prepay_id. -appid must be the appid the order was placed
with. Give -timestamp and -nonce to reproduce a paySign a front end computed;
by default they are now and a fresh nonce. Needs -mchid, -serial and -key.`,
	example: `wechatpay payparams -sandbox -kind jsapi -appid wxd678efh567hg6787 -prepay-id wx201410272009395522657a690389285100
wechatpay payparams -mchid 1900007291 -serial 408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB -key apiclient_key.pem \
    -kind jsapi -appid wx2421b1c4370ec43b -prepay-id wx201410272009395522657a690389285100`,
}

func (a *app) payparams(name string, args []string) error {
	if isTransferKind(args) {
		return a.payparamsTransfer(name, args) // transfer.go
	}
	fs := a.newFlagSet(name, payparamsHelp)
	creds := addCredFlags(fs, needSigner)
	kind := fs.String("kind", "jsapi", "`KIND` of front end: jsapi (also mini-programs) or app")
	appID := fs.String("appid", "", "the `APPID` the order was placed with")
	prepayID := fs.String("prepay-id", "", "the `PREPAY_ID` of the order")
	partnerID := fs.String("partnerid", "", "app only: partnerid (default the merchant ID, -mchid)")
	timestamp := fs.Int64("timestamp", 0, "Unix time in seconds (default now)")
	nonce := fs.String("nonce", "", "nonce, at most 32 characters (default 32 random hex characters)")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *kind != "jsapi" && *kind != "app" {
		return usagef("-kind is %q; want jsapi or app", *kind)
	}
	if *appID == "" || *prepayID == "" {
		return usagef("-appid and -prepay-id are required")
	}
	if *timestamp < 0 {
		return usagef("-timestamp must be Unix seconds")
	}
	s, err := creds.load(a, name)
	if err != nil {
		return err
	}
	defer s.close()

	ts := ""
	if *timestamp != 0 {
		ts = strconv.FormatInt(*timestamp, 10)
	}
	var out any
	switch *kind {
	case "jsapi":
		p := &payments.JSAPIParams{AppID: *appID, TimeStamp: ts, NonceStr: *nonce, Package: "prepay_id=" + *prepayID}
		if err := p.Sign(s.cfg.PrivateKey); err != nil {
			return usagef("%v", err)
		}
		out = p
	case "app":
		pid := *partnerID
		if pid == "" {
			pid = s.cfg.MerchantID
		}
		p := &payments.AppParams{AppID: *appID, PartnerID: pid, PrepayID: *prepayID, TimeStamp: ts, NonceStr: *nonce}
		if err := p.Sign(s.cfg.PrivateKey); err != nil {
			return usagef("%v", err)
		}
		out = p
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%s\n", b)
	return nil
}
