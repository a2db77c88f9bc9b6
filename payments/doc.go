// Package payments is a thin, typed layer over WeChat Pay's payment
// lifecycle (prepay, query, close, refund, bills) and the parameters a
// front end needs to start a payment (JSAPI, mini-program, App).
//
// It adds no transport of its own: every call goes through the
// *http.Client the caller gives it, whose Transport is a
// *wechatpay.Transport that signs each request and verifies each answer.
// Requests and answers are plain structs whose JSON tags are WeChat Pay's
// field names; amounts are in fen (int64), never floating point.
package payments
