package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/payments"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

var demoHelp = help{
	synopsis: "demo",
	text: `Starts an embedded sandbox and walks through what the library does, printing
each step and its outcome: credentials, certificate download and
verification, a Native order placed with a signed call and a verified
response, its query (NOTPAY), a certificate rotation met by one lazy
download, a tampered response rejected, a signature probe recognised,
public-key mode, the payer paying on the cashier, the TRANSACTION.SUCCESS
callback verified and decrypted by the middleware, the query (SUCCESS), a
refund and its REFUND.SUCCESS callback, and an over-refund refused. Needs
no account and no flags. Ends with the Go code that wires a real client.`,
	example: `wechatpay demo`,
}

// demoSteps prints numbered steps and remembers which failed.
type demoSteps struct {
	w      io.Writer
	n      int
	failed []string
}

// step runs f under a numbered title and prints its outcome lines.
func (d *demoSteps) step(title string, f func() ([]string, error)) {
	d.n++
	fmt.Fprintf(d.w, "\n%d. %s\n", d.n, title)
	lines, err := f()
	for _, l := range lines {
		fmt.Fprintf(d.w, "   %s\n", l)
	}
	if err != nil {
		fmt.Fprintf(d.w, "   FAILED: %v\n", err)
		d.failed = append(d.failed, title)
		return
	}
	fmt.Fprintf(d.w, "   ok\n")
}

func (a *app) demo(name string, args []string) error {
	fs := a.newFlagSet(name, demoHelp)
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("demo takes no arguments")
	}
	ctx, cancel := context.WithTimeout(a.ctx, time.Minute)
	defer cancel()
	w := a.stdout
	d := &demoSteps{w: w}

	fmt.Fprintln(w, "wechatpay demo: every step runs against an embedded sandbox that speaks the")
	fmt.Fprintln(w, "real APIv3 protocol, with generated credentials.")

	srv := wechatpaytest.NewServer(wechatpaytest.WithRefundDelay(200 * time.Millisecond))
	defer srv.Close()
	m := srv.Merchant()
	const outTradeNo = "DEMO20240101001"
	queryPath := "/v3/pay/transactions/out-trade-no/" + outTradeNo + "?mchid=" + m.ID

	// A small MinRefreshInterval lets the rotation step below download
	// again right after the first download; in production keep the
	// default (1 minute), which stops forged serials from causing floods.
	const minRefresh = 10 * time.Millisecond
	var (
		store    *wechatpay.Store
		client   *http.Client
		cfg      wechatpay.Config
		callback *httptest.Server
		got      = make(chan *middleware.Notification, 4)
	)
	// call makes a signed call and decodes its verified JSON answer.
	call := func(c *http.Client, base, method, path string, body any) (*http.Response, map[string]any, error) {
		var rd io.Reader
		if body != nil {
			b, err := json.Marshal(body)
			if err != nil {
				return nil, nil, err
			}
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
		if err != nil {
			return nil, nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		if err := wechatpay.CheckResponse(resp); err != nil {
			return resp, nil, err
		}
		var out map[string]any
		raw, err := io.ReadAll(resp.Body)
		if err == nil && len(raw) > 0 {
			err = json.Unmarshal(raw, &out)
		}
		return resp, out, err
	}
	get := func(c *http.Client, base string) (*http.Response, map[string]any, error) {
		return call(c, base, http.MethodGet, queryPath, nil)
	}
	// awaitCallback waits for the merchant's handler to receive a
	// notification of the given event type.
	awaitCallback := func(eventType string) (*middleware.Notification, error) {
		select {
		case n := <-got:
			if n.EventType != eventType {
				return nil, fmt.Errorf("received %s, want %s", n.EventType, eventType)
			}
			return n, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("no %s callback arrived", eventType)
		}
	}
	amount := func(v any) string {
		f, _ := v.(float64)
		return payments.FormatAmount(int64(f), "CNY")
	}

	d.step("Load the merchant's credentials", func() ([]string, error) {
		cfg = srv.Config()
		var err error
		if store, err = wechatpay.NewStore(wechatpay.StoreOptions{MinRefreshInterval: minRefresh}); err != nil {
			return nil, err
		}
		cfg.Store = store
		t, err := wechatpay.NewTransport(cfg)
		if err != nil {
			return nil, err
		}
		client = &http.Client{Transport: t}
		h := middleware.Notifications(middleware.Config{Keys: store, MerchantID: m.ID, APIv3Key: m.APIv3Key})(
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n, _ := middleware.NotificationFrom(r.Context())
				got <- n
			}))
		callback = httptest.NewServer(h)
		return []string{
			"merchant ID (mchid):          " + m.ID,
			"merchant certificate serial:  " + m.CertificateSerial,
			"private key, APIv3 key:       loaded (never printed)",
			"sandbox:                      " + srv.URL,
			"merchant's callback server:   " + callback.URL + "/wechatpay/notify (middleware.Notifications)",
		}, nil
	})
	if client == nil {
		return &exitError{code: exitFailure, msg: "wechatpay demo: could not set up the client"}
	}
	defer store.Close()
	defer callback.Close()

	d.step("Download, decrypt and verify the platform certificates", func() ([]string, error) {
		if err := store.Refresh(ctx, m.ID); err != nil {
			return nil, err
		}
		var lines []string
		for _, c := range store.Certificates(m.ID) {
			lines = append(lines, fmt.Sprintf("platform certificate %s, valid until %s", wire.CertSerial(c), c.NotAfter.UTC().Format(time.DateOnly)))
		}
		lines = append(lines, "decrypted with the APIv3 key (AEAD_AES_256_GCM); the download's own signature verified")
		return lines, nil
	})

	order := map[string]any{
		"appid": "wxd678efh567hg6787", "mchid": m.ID, "description": "Sandbox tea",
		"out_trade_no": outTradeNo, "notify_url": callback.URL + "/wechatpay/notify",
		"amount": map[string]any{"total": 100, "currency": "CNY"},
	}
	d.step("Place a Native order (a signed call; its response verified)", func() ([]string, error) {
		resp, out, err := call(client, srv.URL, http.MethodPost, "/v3/pay/transactions/native", order)
		if err != nil {
			return nil, err
		}
		if !wechatpay.IsVerified(resp) {
			return nil, errors.New("the response was not verified")
		}
		return []string{
			"POST /v3/pay/transactions/native: order " + outTradeNo + ", " + payments.FormatAmount(100, "CNY") + ", \"Sandbox tea\"",
			fmt.Sprintf("%s, signed by platform certificate %s, verified", resp.Status, resp.Header.Get(wire.HeaderSerial)),
			fmt.Sprintf("code_url: %v (the payer's cashier page)", out["code_url"]),
		}, nil
	})

	d.step("Query the order", func() ([]string, error) {
		_, out, err := get(client, srv.URL)
		if err != nil {
			return nil, err
		}
		if out["trade_state"] != "NOTPAY" {
			return nil, fmt.Errorf("trade_state %v, want NOTPAY", out["trade_state"])
		}
		return []string{fmt.Sprintf("GET /v3/pay/transactions/out-trade-no/%s: trade_state %v (%v)", outTradeNo, out["trade_state"], out["trade_state_desc"])}, nil
	})

	d.step("Certificate rotation, met by one lazy download", func() ([]string, error) {
		serial := srv.AddCertificate(m.ID)
		srv.UseCertificate(m.ID, serial)
		time.Sleep(minRefresh) // past the minimum refresh interval
		before := srv.MerchantCertificateDownloads(m.ID)
		resp, _, err := get(client, srv.URL)
		if err != nil {
			return nil, err
		}
		after := srv.MerchantCertificateDownloads(m.ID)
		lines := []string{
			"WeChat Pay listed a new certificate and now signs with it: " + serial,
			fmt.Sprintf("the next call met the unknown serial, downloaded once and verified: %s signed by %s", resp.Status, resp.Header.Get(wire.HeaderSerial)),
			fmt.Sprintf("certificate downloads: %d before, %d after", before, after),
		}
		if after != before+1 {
			return lines, fmt.Errorf("want exactly one more download, got %d", after-before)
		}
		return lines, nil
	})

	rejected := func(f wechatpaytest.Fault, want error, what string) func() ([]string, error) {
		return func() ([]string, error) {
			srv.SetFault(f)
			defer srv.SetFault(wechatpaytest.FaultNone)
			_, _, err := get(client, srv.URL)
			if err == nil {
				return nil, errors.New("the response was accepted")
			}
			if !errors.Is(err, want) {
				return nil, fmt.Errorf("rejected, but not as %v: %w", want, err)
			}
			return []string{what, "rejected: " + err.Error()}, nil
		}
	}
	d.step("A tampered response is rejected", rejected(wechatpaytest.FaultTamperBody, wechatpay.ErrBadSignature,
		"the sandbox flips one bit of the body after signing it"))
	d.step("A signature probe is recognised", rejected(wechatpaytest.FaultProbe, wechatpay.ErrSignatureProbe,
		"WeChat Pay sometimes sends WECHATPAY/SIGNTEST/... on purpose, to check that clients verify"))

	d.step("Public-key mode (WeChat Pay public key instead of platform certificates)", func() ([]string, error) {
		pk := wechatpaytest.NewServer(wechatpaytest.PublicKeyOnly())
		defer pk.Close()
		pcfg := pk.Config() // carries PublicKeyID and PublicKey
		t, err := wechatpay.NewTransport(pcfg)
		if err != nil {
			return nil, err
		}
		pkOrder := maps.Clone(order)
		pkOrder["mchid"] = pk.Merchant().ID
		resp, _, err := call(&http.Client{Transport: t}, pk.URL, http.MethodPost, "/v3/pay/transactions/native", pkOrder)
		if err != nil {
			return nil, err
		}
		lines := []string{
			"a merchant registered since late 2024 has a public key " + pcfg.PublicKeyID + " and no platform certificates",
			fmt.Sprintf("the call sent Wechatpay-Serial: %s; the response was signed with it and verified: %s", pcfg.PublicKeyID, resp.Status),
			fmt.Sprintf("certificate downloads: %d", pk.CertificateDownloads()),
		}
		if got := resp.Header.Get(wire.HeaderSerial); got != pcfg.PublicKeyID {
			return lines, fmt.Errorf("response signed by %s, want the public key", got)
		}
		if pk.CertificateDownloads() != 0 {
			return lines, errors.New("a public-key merchant should need no certificate download")
		}
		return lines, nil
	})

	var transactionID string
	d.step("The payer pays; the callback arrives (verified, then decrypted by the middleware)", func() ([]string, error) {
		if err := srv.Pay(m.ID, outTradeNo, wechatpaytest.PaySuccess); err != nil {
			return nil, err
		}
		n, err := awaitCallback("TRANSACTION.SUCCESS")
		if err != nil {
			return nil, err
		}
		tx, err := n.Transaction()
		if err != nil {
			return nil, err
		}
		transactionID = tx.TransactionID
		// A forged copy (probe signature) never reaches the handler.
		probe, err := srv.Notify(ctx, callback.URL+"/wechatpay/notify", "TRANSACTION.SUCCESS", wechatpaytest.PaymentResource(m), wechatpaytest.NotifyProbe())
		if err != nil {
			return nil, err
		}
		probe.Body.Close()
		if probe.StatusCode != http.StatusUnauthorized || len(got) != 0 {
			return nil, fmt.Errorf("a probe notification was answered %d", probe.StatusCode)
		}
		lines := []string{
			"the sandbox's cashier took the payment (as the Pay button, 'wechatpay pay' or srv.Pay do)",
			fmt.Sprintf("callback %s: order %s, transaction %s, %s, state %s, paid %s",
				n.EventType, tx.OutTradeNo, tx.TransactionID, payments.FormatAmount(tx.Amount.Total, tx.Amount.Currency), tx.TradeState,
				tx.SuccessTime.Format(time.RFC3339)),
		}
		// The sandbox records the attempt once it has read the answer.
		for wait := 0; len(srv.Deliveries()) == 0 && wait < 200; wait++ {
			time.Sleep(10 * time.Millisecond)
		}
		for _, dl := range srv.Deliveries() {
			lines = append(lines, fmt.Sprintf("delivery attempt %d: the handler answered %d in %s", dl.Attempt, dl.Status, dl.Duration.Round(time.Millisecond)))
		}
		lines = append(lines, "a probe-signed copy was answered 401 and never reached the handler")
		return lines, nil
	})

	d.step("Query the order again", func() ([]string, error) {
		_, out, err := get(client, srv.URL)
		if err != nil {
			return nil, err
		}
		if out["trade_state"] != "SUCCESS" || out["transaction_id"] != transactionID {
			return nil, fmt.Errorf("trade_state %v, transaction_id %v", out["trade_state"], out["transaction_id"])
		}
		return []string{fmt.Sprintf("trade_state %v, transaction_id %v, paid %v", out["trade_state"], out["transaction_id"], amount(out["amount"].(map[string]any)["payer_total"]))}, nil
	})

	refund := func(outRefundNo string, fen int64) map[string]any {
		return map[string]any{"out_trade_no": outTradeNo, "out_refund_no": outRefundNo, "reason": "demo",
			"amount": map[string]any{"refund": fen, "total": 100, "currency": "CNY"}}
	}
	d.step("Refund part of the order; the refund callback arrives", func() ([]string, error) {
		_, out, err := call(client, srv.URL, http.MethodPost, "/v3/refund/domestic/refunds", refund("DEMOREFUND1", 30))
		if err != nil {
			return nil, err
		}
		lines := []string{fmt.Sprintf("POST /v3/refund/domestic/refunds: refund %v of %s, status %v", out["refund_id"], payments.FormatAmount(30, "CNY"), out["status"])}
		n, err := awaitCallback("REFUND.SUCCESS")
		if err != nil {
			return lines, err
		}
		r, err := n.Refund()
		if err != nil {
			return lines, err
		}
		lines = append(lines, fmt.Sprintf("callback %s: refund %s of order %s, %s of %s, status %s",
			n.EventType, r.OutRefundNo, r.OutTradeNo, payments.FormatAmount(r.Amount.Refund, "CNY"), payments.FormatAmount(r.Amount.Total, "CNY"), r.RefundStatus))
		_, q, err := call(client, srv.URL, http.MethodGet, "/v3/refund/domestic/refunds/DEMOREFUND1", nil)
		if err != nil {
			return lines, err
		}
		_, o, err := get(client, srv.URL)
		if err != nil {
			return lines, err
		}
		lines = append(lines, fmt.Sprintf("refund query: status %v; order trade_state %v", q["status"], o["trade_state"]))
		if q["status"] != "SUCCESS" || o["trade_state"] != "REFUND" {
			return lines, errors.New("the refund did not end in SUCCESS with the order in REFUND")
		}
		return lines, nil
	})

	d.step("A refund beyond what remains is refused", func() ([]string, error) {
		_, _, err := call(client, srv.URL, http.MethodPost, "/v3/refund/domestic/refunds", refund("DEMOREFUND2", 71))
		var apiErr *wechatpay.APIError
		if !errors.As(err, &apiErr) || apiErr.Code != "INVALID_REQUEST" {
			return nil, fmt.Errorf("got %v; want INVALID_REQUEST", err)
		}
		return []string{fmt.Sprintf("%s of the %s left: HTTP %d %s %s", payments.FormatAmount(71, "CNY"), payments.FormatAmount(70, "CNY"), apiErr.StatusCode, apiErr.Code, apiErr.Message)}, nil
	})

	demoTransfer(ctx, d, srv, client, store, m) // transfer.go

	fmt.Fprint(w, `
Wire a real client in three lines of Go:

	key, err := wechatpay.LoadPrivateKeyFile("apiclient_key.pem")
	t, err := wechatpay.NewTransport(wechatpay.Config{MerchantID: "1900000001", CertificateSerial: "<serial of apiclient_cert.pem>", PrivateKey: key, APIv3Key: os.Getenv("WECHATPAY_APIV3_KEY")})
	client := &http.Client{Transport: t} // every request signed, every response verified
`)
	if len(d.failed) > 0 {
		return &exitError{code: exitFailure, msg: fmt.Sprintf("wechatpay demo: %d step(s) failed: %s", len(d.failed), strings.Join(d.failed, "; "))}
	}
	fmt.Fprintf(w, "\nAll %d steps passed.\n", d.n)
	return nil
}
