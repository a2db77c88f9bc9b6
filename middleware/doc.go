// Package middleware receives WeChat Pay callback notifications in any
// net/http handler: it verifies their signature, decrypts their resource
// and hands the handler a *Notification, answering WeChat Pay itself when
// anything is wrong (docs/protocol.md §6).
//
// Wiring for one merchant, sharing the *wechatpay.Store of its Transport:
//
//	store, _ := wechatpay.NewStore(wechatpay.StoreOptions{})
//	t, _ := wechatpay.NewTransport(wechatpay.Config{ /* ... */ Store: store})
//
//	mux := http.NewServeMux()
//	mux.Handle("POST /wechatpay/notify", middleware.Notifications(middleware.Config{
//		Keys:       store,
//		MerchantID: "1900000001",
//		APIv3Key:   apiv3Key,
//		ErrorHandler: func(r *http.Request, err error) {
//			slog.Warn("wechat pay callback refused", "err", err)
//		},
//	})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//		n, _ := middleware.NotificationFrom(r.Context())
//		tx, err := n.Transaction()
//		if err != nil {
//			middleware.Fail(w, http.StatusBadRequest, "unexpected notification")
//			return
//		}
//		// Record tx.OutTradeNo as paid, idempotently. Writing nothing
//		// answers 204, which tells WeChat Pay the notification arrived.
//	})))
//
// Keys must know the merchant: give it the Store the Transport was made
// with, or t.Verifier.Keys, which is that Store whether or not Config
// named one. A Store that does not know the merchant answers every
// callback 404, and ErrorHandler's error says so.
//
// A platform serving many merchants from one endpoint sets MerchantIDFunc
// (for example from r.PathValue("mchid") on "POST /notify/{mchid}") and
// APIv3Keys instead of MerchantID and APIv3Key, and registers every
// merchant with the one Store.
//
// # What the middleware answers
//
// The handler runs only for a POST whose signature verified and whose
// resource decrypted. Otherwise the middleware answers with WeChat Pay's
// failure JSON, {"code":"FAIL","message":"..."}, whose message is generic,
// and WeChat Pay retries later:
//
//   - 405 for a method other than POST;
//   - 404 for a merchant the configuration (MerchantIDFunc, APIv3Keys) or
//     the Store does not know;
//   - 413 for a body over MaxBodySize, 400 for a body that cannot be read,
//     408 for a body that did not arrive within BodyTimeout (the memory
//     held for a body grows with the bytes that arrived, never with the
//     Content-Length it declares);
//   - 401 when verification fails: missing headers, a timestamp more than
//     5 minutes away, a signature probe (WECHATPAY/SIGNTEST/), a serial
//     no key is known for, a wrong signature;
//   - 503 when the key could not be obtained within Budget (a slow or
//     failing certificate download): the callback may be genuine; also
//     when Config.Guard says another delivery is processing it;
//   - 400 for a verified body that is not a notification or whose resource
//     does not decrypt (a wrong APIv3 key);
//   - 500 when APIv3Keys returns a key that is not 32 bytes.
//
// ErrorHandler receives the real error, an *Error, for logging; it never
// contains the APIv3 key or decrypted data.
//
// # Duplicates
//
// WeChat Pay delivers a notification again until it gets a 2xx answer, for
// 24 h 4 m, and sometimes twice in parallel on two network paths; handlers
// must be idempotent. Config.Guard, off by default, claims each
// notification before the handler runs: the handler runs for one delivery
// at a time; a notification processed before is answered 204 without
// running it; one being processed by another delivery is answered 503, so
// that WeChat Pay comes back later rather than take work that may still
// fail for done. A handler that fails releases its claim. MemoryGuard
// works within one process: a fleet of servers behind a load balancer
// needs a shared DuplicateGuard, such as the Guard of package
// github.com/wxpaykit/wechatpay/redisstore. A guard that fails lets
// notifications through and reports to ErrorHandler.
package middleware
