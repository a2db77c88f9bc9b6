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
// Three kinds of merchant can be played: by default one with platform
// certificates (and, with [WithPublicKey], a WeChat Pay public key that
// answers use when the request names it); with [PublicKeyOnly] the
// merchant most new merchants are, with no platform certificate, so that
// /v3/certificates answers 404 RESOURCE_NOT_EXISTS and every answer and
// callback is signed with the public key (Wechatpay-Serial: PUB_KEY_ID_…);
// with [Migrating] one in the middle of the switch, whose callbacks come
// signed with either key. Each merchant also has a merchant API
// certificate ([Merchant].Certificate, apiclient_cert.pem) whose serial
// is its CertificateSerial; serials are 40 upper-case hex digits and
// never start with "0", like WeChat Pay's.
//
// A test can rotate platform certificates ([Server.AddCertificate],
// [Server.UseCertificate], [Server.ExpireCertificate]), make the
// certificate endpoint fail or stall ([Server.SetCertFault],
// [Server.SetCertDelay]), corrupt response signatures ([Server.SetFault]),
// skew the sandbox clock ([Server.SetClockOffset]), and count what was
// served ([Server.CertificateDownloads], [Server.Requests]).
//
// A minimal test with a route of its own:
//
//	srv := wechatpaytest.NewServer()
//	defer srv.Close()
//	srv.Handle("GET /v3/merchant/fund/balance/{type}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//		fmt.Fprintf(w, `{"available_amount":100,"mchid":%q}`, wechatpaytest.MerchantIDFrom(r.Context()))
//	}))
//	cfg := srv.Config() // merchant credentials, BaseURL and Base pointing at the sandbox
//
// # A WeChat Pay simulator
//
// The sandbox keeps orders and refunds with their real lifecycle. A
// prepay call validates its body as WeChat Pay does and creates a NOTPAY
// order; placing the same out_trade_no again with the same parameters
// returns the same prepay, with other parameters OUT_TRADE_NO_USED, once
// paid ORDERPAID, once closed ORDER_CLOSED. Query answers the order's
// real state (404 ORDER_NOT_EXIST for an unknown one); close moves NOTPAY
// to CLOSED (204). The payer pays on the web cashier page that the
// order's code_url and h5_url lead to ([CashierPath]), a test with
// [Server.Pay], any client with the control endpoint [PayPath]. A payment
// makes the order SUCCESS and sends a signed, encrypted TRANSACTION.SUCCESS
// notification to its notify_url from a goroutine the server owns; an
// answer other than 200 or 204 within 5 s is retried on WeChat Pay's
// schedule ([RetrySchedule], compressible with [WithCallbackSchedule]),
// optionally twice in parallel ([WithDuplicateCallbacks]). Every attempt
// is recorded ([Server.Deliveries], [OnDelivery]) and shown on the cashier
// page. A refund is PROCESSING, then SUCCESS (or what [Server.SetRefundOutcome]
// says) with its REFUND.* notification; the order becomes REFUND; a
// refund beyond what remains is refused. The trade bill of a day lists its
// simulated payments and refunds. Faults on demand: [Server.FailRoute]
// (SYSTEM_ERROR, FREQUENCY_LIMITED, a timeout after doing the work) and
// [PayUserPaying]. State lives in memory, or in a file with
// [WithStateFile].
//
// # Routes
//
// Routes a test registers with [Server.Handle] take precedence over every
// built-in route below. Every route but the cashier and APIv2 requires a
// valid APIv3 Authorization, and every answer to it is signed.
//
// Certificates and files:
//
//	GET  /v3/certificates, /v3/global/certificates   platform certificates
//	GET  /v3/bill/tradebill                           the day's trade bill (simulated orders and refunds)
//	GET  /v3/bill/fundflowbill                        a generated fund flow bill (SetBillSize)
//	GET  /v3/billdownload/file                        bill files, unsigned as WeChat Pay sends them
//	POST /v3/merchant/media/upload, /v3/merchant/media/video_upload,
//	     /v3/marketing/favor/media/image-upload       media uploads (Server.UploadedMedia)
//	POST /risk/getcertficates                         APIv2 certificates (and Server.HandleV2 routes)
//
// Payments (direct merchant, and service provider under /v3/pay/partner):
//
//	POST /v3/pay/transactions/{jsapi|app|h5|native}
//	POST /v3/pay/partner/transactions/{jsapi|app|h5|native}
//	GET  /v3/pay/transactions/id/{transaction_id}?mchid=
//	GET  /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=
//	GET  /v3/pay/partner/transactions/id/{transaction_id}?sp_mchid=&sub_mchid=
//	GET  /v3/pay/partner/transactions/out-trade-no/{out_trade_no}?sp_mchid=&sub_mchid=
//	POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close
//	POST /v3/pay/partner/transactions/out-trade-no/{out_trade_no}/close
//	POST /v3/refund/domestic/refunds
//	GET  /v3/refund/domestic/refunds/{out_refund_no}
//
// Profit sharing (分账) over paid orders whose prepay set
// settle_info.profit_sharing; receiver names are decrypted with the key
// the request's Wechatpay-Serial names, and a name in clear is refused.
// Sharing is done at once (the create answer says PROCESSING, a query
// FINISHED), up to 30% of the order; PROFITSHARING.* notifications go to
// receivers that are merchants of the server (SetProfitSharingNotifyURL):
//
//	POST /v3/profitsharing/receivers/add, /v3/profitsharing/receivers/delete
//	POST /v3/profitsharing/orders
//	GET  /v3/profitsharing/orders/{out_order_no}?transaction_id=
//	POST /v3/profitsharing/orders/unfreeze
//	GET  /v3/profitsharing/transactions/{transaction_id}/amounts
//	POST /v3/profitsharing/return-orders
//	GET  /v3/profitsharing/return-orders/{out_return_no}?out_order_no=
//
// The 2025 merchant transfer (商家转账, docs/protocol.md §14): a bill is
// WAIT_USER_CONFIRM with a package_info until the user confirms
// (the page at TransferConfirmPath, or the control endpoint
// ConfirmTransferPath), then SUCCESS or FAIL; a cancel makes it
// CANCELLED; after 24 hours it is FAIL. Each end sends
// MCHTRANSFER.BILL.FINISHED to the bill's notify_url. user_name is
// decrypted with the key the request's Wechatpay-Serial names; a name in
// clear, a bill of 2,000 yuan or more without one, a known out_bill_no
// with other parameters and a 101st create in a second are refused as
// WeChat Pay does. A user grants 免确认收款授权 on the same page (with the
// authorisation's package_info), through ConfirmTransferPath, or by
// confirming a pre-transfer's bill. Direct and
// service provider (under /partner/, with sub_mchid):
//
//	POST /v3/fund-app/mch-transfer/transfer-bills
//	POST /v3/fund-app/mch-transfer/transfer-bills/out-bill-no/{out_bill_no}/cancel
//	GET  /v3/fund-app/mch-transfer/transfer-bills/out-bill-no/{out_bill_no}
//	GET  /v3/fund-app/mch-transfer/transfer-bills/transfer-bill-no/{transfer_bill_no}
//	POST /v3/fund-app/mch-transfer/elecsign/out-bill-no (receipts; direct only)
//	GET  /v3/fund-app/mch-transfer/elecsign/out-bill-no/{out_bill_no}
//	GET  /v3/transferdownload/elecvoucherfile           receipt files, unsigned
//	POST /v3/fund-app/mch-transfer/transfer-bills/pre-transfer-with-authorization (direct only)
//	POST /v3/fund-app/mch-transfer/transfer-bills/transfer (to a user who granted 免确认收款授权)
//	POST /v3/fund-app/mch-transfer/user-confirm-authorization (direct only)
//	GET  /v3/fund-app/mch-transfer/user-confirm-authorization/out-authorization-no/{no}
//	POST /v3/fund-app/mch-transfer/user-confirm-authorization/out-authorization-no/{no}/close
//
// Combine orders (one payment over several sub-orders; PayCombine, or
// PayPath with the combine_out_trade_no, pays them all and sends one
// TRANSACTION.SUCCESS) and payment codes (over 1,000 CNY a charge stays
// USERPAYING until Pay or a reverse ends it):
//
//	POST /v3/combine-transactions/{jsapi|app|h5|native}
//	GET  /v3/combine-transactions/out-trade-no/{combine_out_trade_no}
//	POST /v3/combine-transactions/out-trade-no/{combine_out_trade_no}/close
//	POST /v3/pay/transactions/codepay, /v3/pay/partner/transactions/codepay
//	POST /v3/pay/[partner/]transactions/out-trade-no/{out_trade_no}/reverse
//
// Consumer complaints 2.0 against paid orders, filed by FileComplaint or
// ComplaintPath, PENDING until the merchant answers, PROCESSING, then
// PROCESSED; payer_phone is encrypted for the merchant on every answer,
// and COMPLAINT.CREATE and COMPLAINT.STATE_CHANGE notifications go to the
// URL the merchant set:
//
//	GET  /v3/merchant-service/complaints-v2?begin_date=&end_date=&limit=&offset=
//	GET  /v3/merchant-service/complaints-v2/{complaint_id}
//	GET  /v3/merchant-service/complaints-v2/{complaint_id}/negotiation-historys
//	POST /v3/merchant-service/complaints-v2/{complaint_id}/response, …/complete, …/update-refund-progress
//	POST, GET, PUT, DELETE /v3/merchant-service/complaint-notifications
//	POST /v3/merchant-service/images/upload          images, signed over their meta JSON
//	GET  /v3/merchant-service/images/{media_id}      images, unsigned as WeChat Pay sends them
//
// Encrypted bills and uploads with other meta:
//
//	GET  /v3/bill/sub-merchant-fundflowbill, /v3/ecommerce/bill/fundflowbill
//	                                  AES-256-GCM parts, split and tampered on demand (SetEncryptedBills)
//	GET  /v3/bill/downloadurl         the parts, unsigned
//	POST /v3/new-tax-control-fapiao/fapiao-applications/upload-fapiao-file   meta with an SM3 digest
//
// The sandbox's own endpoints:
//
//	GET, POST /sandbox/cashier     the payer's cashier page (no Authorization)
//	GET, POST /sandbox/cashier/transfer  the user's transfer confirmation page (no Authorization)
//	POST /sandbox/confirm-transfer confirm a transfer as the user (ConfirmTransferPath)
//	POST /sandbox/pay              pay an order (PayPath)
//	POST /sandbox/notify           send a notification to any URL (NotifyPath)
//	POST /sandbox/faults           queue faults (FaultsPath)
//	POST /sandbox/complaint        file a complaint against a paid order (ComplaintPath)
//
// # What differs from production
//
// The sandbox is strict where WeChat Pay is: a JSON route called with a
// body whose Content-Type is not application/json gets 400
// INVALID_REQUEST, as WeChat Pay's APIv3 rules require that header on
// every request but uploads. It differs on purpose in a few places:
//
//   - it listens on plain http on loopback; WeChat Pay is https only;
//   - a Native order's code_url (and an H5 order's h5_url) is the
//     sandbox's cashier page, http://…/sandbox/cashier?prepay_id=…, where
//     production's code_url is weixin://wxpay/bizpayurl?pr=… for the WeChat
//     app to scan: a client must not parse it;
//   - it accepts http notify_urls, for a merchant server on the
//     developer's machine; WeChat Pay requires https, so each delivery to
//     an http URL carries a [Delivery].Warning;
//   - /sandbox/… are its own endpoints, and the callback retry schedule,
//     refund delay and clock can be compressed or skewed.
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
