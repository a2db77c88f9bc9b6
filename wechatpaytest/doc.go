// Package wechatpaytest provides an in-process WeChat Pay APIv3 sandbox for
// tests, in the spirit of [net/http/httptest].
//
// [NewServer] starts an HTTP server on a loopback port that speaks the real
// APIv3 protocol: it authenticates every request's Authorization header as
// WeChat Pay does (answering INVALID_REQUEST, SIGN_ERROR and PARAM_ERROR
// with WeChat Pay's error JSON), serves the platform certificate download at
// /v3/certificates and /v3/global/certificates, and signs every response,
// including errors and 204s, with the merchant's current platform
// certificate or, when the request asks for it with a Wechatpay-Serial
// header naming a PUB_KEY_ID_, with the WeChat Pay public key. Tests add
// business routes with [Server.Handle]; the sandbox buffers and signs
// whatever the handler writes.
//
// A test can rotate platform certificates ([Server.AddCertificate],
// [Server.UseCertificate], [Server.ExpireCertificate]), make the
// certificate endpoint fail or stall ([Server.SetCertFault],
// [Server.SetCertDelay]), corrupt response signatures ([Server.SetFault]),
// skew the sandbox clock ([Server.SetClockOffset]), and count what was
// served ([Server.CertificateDownloads], [Server.Requests]).
//
// A minimal test:
//
//	srv := wechatpaytest.NewServer()
//	defer srv.Close()
//	srv.Handle("GET /v3/pay/transactions/id/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//		fmt.Fprintf(w, `{"transaction_id":%q,"mchid":%q}`, r.PathValue("id"), wechatpaytest.MerchantIDFrom(r.Context()))
//	}))
//	cfg := srv.Config() // merchant credentials, BaseURL and Base pointing at the sandbox
//
// # Keys are for tests only
//
// Every key, certificate and APIv3 key the sandbox hands out is generated
// at run time for tests. To keep test suites fast, RSA key pairs come from a
// small package-wide pool and are shared between merchants and servers (a
// merchant's own keys are always distinct from one another). Never use
// sandbox material outside tests, and never put real merchant credentials
// into a sandbox.
package wechatpaytest
