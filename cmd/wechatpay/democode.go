package main

// demoEnding is what the demo prints last: a program that wires a real
// merchant (client, payments, middleware), then where to go next.
// TestDemoCodeCompiles builds the program as printed.
const demoEnding = `
Wire a real merchant in Go (client, payments, callbacks), as in main.go:

` + demoProgram + `
Next:
  - Any language: 'wechatpay sandbox -dir /tmp/sandbox' serves this same
    WeChat Pay over HTTP and writes merchant.json (mchid, serial, key files,
    APIv3 key, base_url) for any client; 'wechatpay pay' pays its orders.
  - Go tests: wechatpaytest.NewServer() starts it in-process, and
    srv.Config() is a ready wechatpay.Config for it.
  - Your merchant: 'wechatpay doctor -mchid ... -serial ... -key ...' checks
    hosts, clock and keys, and says how to fix each problem.
`

// demoProgram is indented by one tab, as printed; the test removes it.
const demoProgram = `	package main

	import (
		"log"
		"net/http"
		"os"

		"github.com/wxpaykit/wechatpay"
		"github.com/wxpaykit/wechatpay/middleware"
		"github.com/wxpaykit/wechatpay/payments"
	)

	func main() {
		key, err := wechatpay.LoadPrivateKeyFile("apiclient_key.pem")
		if err != nil {
			log.Fatal(err)
		}
		store, err := wechatpay.NewStore(wechatpay.StoreOptions{})
		if err != nil {
			log.Fatal(err)
		}
		t, err := wechatpay.NewTransport(wechatpay.Config{
			MerchantID:        "1900000001",
			CertificateSerial: "3775B6A45ACD588826D15E583A95F5DD12345678", // of apiclient_cert.pem
			PrivateKey:        key,
			APIv3Key:          os.Getenv("WECHATPAY_APIV3_KEY"),
			Store:             store, // shared with the callback middleware below
		})
		if err != nil {
			log.Fatal(err)
		}
		client := &http.Client{Transport: t} // every request signed, every response verified
		pay := &payments.Client{HTTP: client, MerchantID: "1900000001", AppID: "wxd678efh567hg6787"}

		http.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
			codeURL, err := pay.PrepayNative(r.Context(), payments.PrepayRequest{
				Description: "Tea",
				OutTradeNo:  r.FormValue("out_trade_no"), // your own order number, 6-32 characters
				NotifyURL:   "https://merchant.example/wechatpay/notify",
				Amount:      payments.OrderAmount{Total: 100}, // fen
			})
			if err != nil {
				log.Printf("prepay: %v", err) // an OutcomeUnknownError says to query before trying again
				http.Error(w, "payment unavailable, try again later", http.StatusBadGateway)
				return
			}
			w.Write([]byte(codeURL)) // show it as a QR code
		})
		http.Handle("POST /wechatpay/notify", middleware.Notifications(middleware.Config{
			Keys: store, MerchantID: "1900000001", APIv3Key: os.Getenv("WECHATPAY_APIV3_KEY"),
		})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := middleware.NotificationFrom(r.Context())
			tx, err := n.Transaction()
			if err != nil {
				middleware.Fail(w, http.StatusBadRequest, "unexpected notification")
				return
			}
			log.Printf("order %s: %s", tx.OutTradeNo, tx.TradeState) // record it, idempotently; 204 follows
		})))
		log.Fatal(http.ListenAndServe(":8080", nil))
	}
`
