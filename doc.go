// Package wechatpay makes calling WeChat Pay (微信支付) APIv3 from Go safe by
// default: a [Transport] signs every request and verifies every response,
// and a [Store] downloads, decrypts, checks and caches the platform
// certificates that verify them, by itself, the first time it meets a
// serial it does not know.
//
// # Wiring
//
// For one merchant, with the callback route that WeChat Pay posts
// notifications to (package middleware) sharing the Transport's Store:
//
//	key, err := wechatpay.LoadPrivateKeyFile("apiclient_key.pem")
//	if err != nil { ... }
//	store, err := wechatpay.NewStore(wechatpay.StoreOptions{})
//	if err != nil { ... }
//	cfg := wechatpay.Config{
//		MerchantID:        "1900000001",
//		CertificateSerial: "3775B6A45ACD588826D15E583A95F5DD********", // of apiclient_cert.pem
//		PrivateKey:        key, // or any RSA crypto.Signer, such as a KMS key
//		APIv3Key:          os.Getenv("WECHATPAY_APIV3_KEY"),
//		Store:             store,
//	}
//	t, err := wechatpay.NewTransport(cfg) // registers the merchant with store
//	if err != nil { ... }
//	client := &http.Client{Transport: t, Timeout: 10 * time.Second}
//
//	resp, err := client.Get("https://api.mch.weixin.qq.com/v3/pay/transactions/out-trade-no/1217752501201407033233368018?mchid=1900000001")
//	if err != nil { ... } // a *VerifyError if the answer was not authentic
//	defer resp.Body.Close()
//	if err := wechatpay.CheckResponse(resp); err != nil { ... } // an *APIError
//
//	mux.Handle("POST /wechatpay/notify", middleware.Notifications(middleware.Config{
//		Keys: store, MerchantID: cfg.MerchantID, APIv3Key: cfg.APIv3Key,
//	})(handler)) // handler gets the verified, decrypted notification
//
// The runnable examples of this package and of package middleware do the
// same against the wechatpaytest sandbox.
//
// # What is verified
//
// Every 2xx and 3xx response the Transport returns was verified; one that
// fails verification is closed and comes back as an error wrapping a
// *[VerifyError]. Test for the reason with errors.Is against
// [ErrBadSignature], [ErrMissingSignature], [ErrClockSkew],
// [ErrSignatureProbe] (WeChat Pay testing that you verify),
// [ErrUnknownSerial], [ErrExpiredKey] and [ErrCertificateDownload]; this
// works through the *url.Error of http.Client. Other statuses are
// verified when signed and otherwise returned as they are: [CheckResponse]
// turns them into an *[APIError] that says whether it was verified, and
// [IsVerified] reports on any response.
//
// Rules that cut across the types:
//
//   - The Transport signs only for the merchant's WeChat Pay hosts (the
//     BaseURL's host and its documented backup); any other host fails with
//     [ErrHostNotAllowed] before anything is sent.
//   - Security decisions fail closed: a missing signature on a 2xx or 3xx
//     response is an error, a signature that cannot be checked is a failed
//     one, and nothing is skipped because a header is absent or a path
//     looks like a download. The only responses passed on unverified are
//     2xx answers to GET requests the caller marked with
//     [WithoutResponseVerification]; [DownloadBill] marks its own and checks
//     the file's hash instead.
//   - Retries go outside the Transport (wrap it), so every attempt is
//     signed with a fresh nonce and timestamp.
//   - Many merchants share one Store: its LRU holds the certificate sets of
//     StoreOptions.Size merchants, downloaded per merchant on demand, at
//     most one download per merchant per MinRefreshInterval whatever the
//     input.
//   - Nothing secret is printed: Config, Signer and the errors of this
//     package never contain a private key, an APIv3 key or an
//     Authorization header.
//
// # Protocol reference
//
// The WeChat Pay facts this package relies on, each with the WeChat Pay
// page it comes from, are in [docs/protocol.md] in the repository; the
// documentation cites its sections as "docs/protocol.md §N".
//
// Package middleware verifies callback notifications; package
// wechatpaytest is a WeChat Pay sandbox for tests; package apiv2 speaks
// WeChat Pay's older XML APIs.
//
// [docs/protocol.md]: https://github.com/wxpaykit/wechatpay/blob/main/docs/protocol.md
package wechatpay
