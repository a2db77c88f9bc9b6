// Package transfers is a thin, typed layer over WeChat Pay's 2025
// merchant transfer (商家转账, 用户确认模式): a merchant pays a user's
// WeChat balance, the user confirms in WeChat, and a notification says
// how it ended (docs/protocol.md §14).
//
// It adds no transport of its own: every call goes through the
// *http.Client the caller gives it, whose Transport is a
// *wechatpay.Transport that signs each request and verifies each answer.
// The user's name is a plain string in BillRequest; the call path
// encrypts it with the key it names in Wechatpay-Serial. Amounts are fen.
//
//	tr := &transfers.Client{HTTP: &http.Client{Transport: t}, MerchantID: cfg.MerchantID, AppID: "wxd678efh567hg6787"}
//	bill, err := tr.Create(ctx, transfers.BillRequest{
//		OutBillNo:       "plfk2020042013",
//		TransferSceneID: "1000",
//		OpenID:          openID,
//		TransferAmount:  500, // fen
//		TransferRemark:  "新会员开通有礼",
//		NotifyURL:       "https://merchant.example/wechatpay/notify",
//		TransferSceneReportInfos: []transfers.SceneReportInfo{
//			{InfoType: "活动名称", InfoContent: "新会员有礼"},
//			{InfoType: "奖励说明", InfoContent: "注册会员抽奖一等奖"},
//		},
//	})
//	var unknown *wechatpay.OutcomeUnknownError
//	if errors.As(err, &unknown) {
//		bill, err = tr.QueryByOutBillNo(ctx, "plfk2020042013") // never a new number
//	}
//	params, err := tr.ConfirmParams(bill) // JSON for wx.requestMerchantTransfer
//
// # Outcomes
//
// Create and Cancel move money. Any failure after the request may have
// reached WeChat Pay, including an error answer, is a
// *wechatpay.OutcomeUnknownError whose NumberName is "out_bill_no": query by
// it, and repeat only with the same out_bill_no and parameters. A new
// number could pay the user twice; WeChat Pay says so on its create page.
// Nothing in this package retries.
//
// The front end's success means the confirmation page was shown, not
// that the user was paid: the MCHTRANSFER.BILL.FINISHED notification
// (EventBillFinished, a Bill) or a query says. Unconfirmed bills are
// closed after 24 hours (FAIL).
package transfers
