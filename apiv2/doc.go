// Package apiv2 speaks WeChat Pay's older XML protocol, APIv2, for the calls
// and the merchants that still need it: it signs requests and checks the
// sign of answers with the APIv2 key (HMAC-SHA256 or MD5,
// [docs/protocol.md] §5.1), parses and writes APIv2 XML safely, and fetches
// platform certificates over POST /risk/getcertficates (docs/protocol.md
// §5) for a merchant wired for APIv2 only. It is a separate protocol from
// the APIv3 of package wechatpay, which never imports this package.
//
// # Wiring
//
// A [Transport] in any http.Client signs every XML body it sends (adding
// nonce_str and mch_id when missing, sign_type unless it signs with MD5,
// and sign) and checks the
// answer's sign; [Post] sends one call and returns the answer's fields
// once the answer was verified and says SUCCESS:
//
//	client := &http.Client{Transport: &apiv2.Transport{
//		MerchantID: "1900000001",
//		Key:        os.Getenv("WECHATPAY_APIV2_KEY"), // the APIv2 key, not the APIv3 key
//	}, Timeout: 10 * time.Second}
//	answer, err := apiv2.Post(ctx, client, "https://api.mch.weixin.qq.com/pay/orderquery", map[string]string{
//		"appid":        "wxd678efh567hg6787",
//		"out_trade_no": "1217752501201407033233368018",
//	})
//	if err != nil { ... } // an *Error for FAIL answers; wechatpay.ErrBadSignature and the like for forged ones
//	state := answer["trade_state"]
//
// An APIv2 sign has no timestamp, so a signed body must never reach
// another host: see Transport.BaseURL.
//
// Calls that need mutual TLS with the merchant API certificate (refunds,
// reversals, red packets, transfers) configure it on Transport.Base; see
// [Transport].
//
// A merchant on APIv2 can still verify APIv3 responses and callbacks:
// [FetchCertificates] downloads and checks its platform certificates, and
// wechatpay.Store.AddCertificates makes a Store trust them.
//
// # What is verified
//
// A 2xx answer whose return_code is SUCCESS is returned only if its sign
// verifies with the APIv2 key; then wechatpay.IsVerified reports true for
// it. WeChat Pay does not sign answers whose return_code is FAIL, nor
// non-2xx answers: those are returned unverified, and Post turns them into
// errors. A redirect is refused, never followed. Like the APIv3
// Transport, it signs only for WeChat Pay's hosts, or for its BaseURL's
// host alone when that is not one of them.
//
// [docs/protocol.md]: https://github.com/wxpaykit/wechatpay/blob/main/docs/protocol.md
package apiv2
