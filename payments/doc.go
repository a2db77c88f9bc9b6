// Package payments is a thin, typed layer over WeChat Pay's payment
// lifecycle (prepay, query, close, refund, bills) and the parameters a
// front end needs to start a payment (JSAPI, mini-program, App).
//
// It adds no transport of its own: every call goes through the
// *http.Client the caller gives it, whose Transport is a
// *wechatpay.Transport that signs each request and verifies each answer.
// Requests and answers are plain structs whose JSON tags are WeChat Pay's
// field names; amounts are in fen (int64), never floating point. Do makes
// any other call the same way.
//
// A JSAPI order, returning what the page passes to wx.requestPayment:
//
//	t, err := wechatpay.NewTransport(cfg)
//	// ...
//	pay := &payments.Client{HTTP: &http.Client{Transport: t}, MerchantID: cfg.MerchantID,
//		AppID: "wxd678efh567hg6787", Key: cfg.PrivateKey}
//	params, err := pay.JSAPI(ctx, payments.PrepayRequest{
//		Description: "QQ公仔",
//		OutTradeNo:  "1217752501201407033233368018",
//		NotifyURL:   "https://merchant.example/wechatpay/notify",
//		Amount:      payments.OrderAmount{Total: 100}, // fen
//		Payer:       &payments.Payer{OpenID: openID},
//	})
//	// json.NewEncoder(w).Encode(params)
//
// Combine orders (CombineJSAPI and the other Combine calls) pay several
// sub-orders at once; CodePayAndWait takes a payment code at the till and
// returns its final state (docs/protocol.md §16, §17).
//
// # Errors
//
// A non-2xx answer is a *wechatpay.APIError (its Code is WeChat Pay's:
// ORDER_NOT_EXIST, ORDERPAID, ...). A state-changing call (prepay, close,
// refund) whose answer was lost or did not verify is a
// *wechatpay.OutcomeUnknownError: query by the out_trade_no or
// out_refund_no before doing anything else. wechatpay.Retryable tells
// which errors a plain retry (same parameters, fresh signature) can fix.
package payments
