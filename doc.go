// Package wechatpay makes calling WeChat Pay (微信支付) APIv3 from Go safe by
// default: a [Transport] signs every request and verifies every response,
// and a [Store] downloads, decrypts, checks and caches the platform
// certificates that verify them, by itself, the first time it meets a
// serial it does not know.
//
// Wiring, for one merchant:
//
//	key, err := wechatpay.LoadPrivateKeyFile("apiclient_key.pem")
//	if err != nil { ... }
//	t, err := wechatpay.NewTransport(wechatpay.Config{
//		MerchantID:        "1900000001",
//		CertificateSerial: "3775B6A45ACD588826D15E583A95F5DD********",
//		PrivateKey:        key,
//		APIv3Key:          os.Getenv("WECHATPAY_APIV3_KEY"),
//	})
//	if err != nil { ... }
//	client := &http.Client{Transport: t}
//	resp, err := client.Get("https://api.mch.weixin.qq.com/v3/pay/transactions/id/4200000000?mchid=1900000001")
//
// Every response such a client returns was verified; one that fails
// verification comes back as an error wrapping a *[VerifyError], with the
// response closed. Test with errors.Is against [ErrBadSignature],
// [ErrClockSkew], [ErrSignatureProbe] (WeChat Pay testing that you verify),
// [ErrUnknownSerial], [ErrMissingSignature] and [ErrBodyTooLarge]; this
// works through the *url.Error of http.Client. Non-2xx answers are returned
// as responses: [CheckResponse] turns them into an *[APIError].
//
// Rules that cut across the types:
//
//   - Retries go outside the Transport (wrap it), so every attempt is
//     signed with a fresh nonce and timestamp.
//   - Security decisions fail closed: a missing signature on a 2xx response
//     is an error, a signature that cannot be checked is a failed one, and
//     nothing is skipped because a header is absent. Only WeChat Pay's
//     documented unsigned downloads, and requests marked with
//     [WithoutResponseVerification], pass unverified.
//   - Many merchants share one Store: NewTransport with Config.Store set
//     registers each merchant; the store's LRU bounds memory however many
//     there are, and certificates are fetched per merchant on demand.
//   - Nothing secret is printed: Config, Signer and the errors of this
//     package never contain a private key, an APIv3 key or an
//     Authorization header.
//
// Package wechatpaytest is a sandbox WeChat Pay for tests; package
// middleware verifies callback notifications.
package wechatpay
