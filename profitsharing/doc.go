// Package profitsharing makes WeChat Pay's profit-sharing (分账) calls of
// a merchant, or of a service provider for a sub-merchant: add and
// delete receivers, share a paid order, query the sharing, unfreeze what
// is left, and return shared money (docs/protocol.md §15).
//
// The hard parts are the library's: a receiver's name is encrypted with
// the one key the Transport chooses for the request, whose serial it
// sends as Wechatpay-Serial; names WeChat Pay sends back are decrypted
// with the merchant key; and a share, unfreeze or return whose answer is
// not a verified 2xx is a *wechatpay.OutcomeUnknownError that names the
// out_order_no or out_return_no to query by. Ask again with the same
// number, never a new one: WeChat Pay de-duplicates by it.
//
// An order can be shared only when its prepay asked for it
// (payments.PrepayRequest.SettleInfo with ProfitSharing set), after it
// was paid. Sharing is asynchronous: CreateOrder answers PROCESSING, and
// QueryOrder says how each receiver fared. The PROFITSHARING.* callbacks
// go to receivers (merchants that were shared to), not to the sharing
// merchant; register Notification with middleware.On to receive them.
//
// The package example runs a whole sharing against the simulator
// (wechatpaytest): a receiver added, a paid order shared and queried.
package profitsharing
