// Package wire is the WeChat Pay APIv3 wire format that the wechatpay
// package, its simulator (wechatpaytest), its middleware and its command
// share: the strings that are signed, the Authorization header, AEAD
// resources, the certificate-download JSON, nonces and header names. Having
// one copy means the client and the simulator cannot drift apart, and the
// simulator's tests check this code against WeChat Pay's official vectors.
//
// The facts come from docs/protocol.md, which cites WeChat Pay's pages.
package wire
