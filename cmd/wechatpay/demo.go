package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	synopsis: "demo [-v]",
	text: `Starts an embedded sandbox and walks through what the library does, printing
each step and its outcome: credentials, certificate download and
verification, a Native order placed with payments.Client (a signed call and a
verified response), its query (NOTPAY), a certificate rotation met by one
lazy download, a tampered response rejected, a signature probe recognised,
public-key mode, the payer paying on the cashier, the TRANSACTION.SUCCESS
callback verified and decrypted by the middleware, the query (SUCCESS), a
refund and its REFUND.SUCCESS callback, an over-refund refused, and a
consumer complaint answered and completed with its callbacks. Needs
no account and no flags. Ends with the Go code that wires a real client, and
where to go next. Errors are printed short; -v prints each whole.`,
	example: `wechatpay demo`,
}

// A demoStep is one numbered step of the demo. A step returns the lines
// it prints; an error fails it. Steps run in order and share one demoRun.
// To add a step, write it as a method of demoRun (in a file of its own if
// it needs more state) and list it in demoSteps.
type demoStep struct {
	title string
	run   func(*demoRun) ([]string, error)
	// essential: the steps after it need what it sets up, so its
	// failure ends the demo.
	essential bool
}

func demoSteps() []demoStep {
	steps := []demoStep{
		{"Load the merchant's credentials", (*demoRun).setup, true},
		{"Download, decrypt and verify the platform certificates", (*demoRun).certificates, false},
		{"Place a Native order with payments.Client (a signed call; its response verified)", (*demoRun).placeOrder, true},
		{"Query the order", (*demoRun).queryUnpaid, false},
		{"Certificate rotation, met by one lazy download", (*demoRun).rotation, false},
		{"A tampered response is rejected", (*demoRun).tampered, false},
		{"A signature probe is recognised", (*demoRun).probe, false},
		{"Public-key mode (WeChat Pay public key instead of platform certificates)", (*demoRun).publicKeyMode, false},
		{"The payer pays; the callback arrives (verified, then decrypted by the middleware)", (*demoRun).payerPays, false},
		{"Query the order again", (*demoRun).queryPaid, false},
		{"Refund part of the order; the refund callback arrives", (*demoRun).refund, false},
		{"A refund beyond what remains is refused", (*demoRun).overRefund, false},
		{"The payer complains; the merchant answers and completes (demo_complaint.go)", (*demoRun).complaint, false},
	}
	return append(steps, demoTransferSteps()...) // transfer.go
}

const (
	demoOutTradeNo = "DEMO20240101001"
	demoAppID      = "wxd678efh567hg6787" // the sandbox takes any appid
	// A small MinRefreshInterval lets the rotation step download again
	// right after the first download; in production keep the default (1
	// minute), which stops forged serials from causing floods.
	demoMinRefresh = 10 * time.Millisecond
)

// demoRun is the state the steps share: the sandbox, the merchant's
// client and callback server, and what earlier steps found.
type demoRun struct {
	ctx      context.Context
	srv      *wechatpaytest.Server
	m        wechatpaytest.Merchant
	store    *wechatpay.Store
	client   *http.Client
	pay      *payments.Client
	callback *httptest.Server
	notes    chan *middleware.Notification // what the merchant's handler received
	attempts chan wechatpaytest.Delivery   // the sandbox's delivery attempts

	transactionID string
	transfer      *demoTransfer // transfer.go
	verbose       bool          // -v: errors whole, with their chain
	cleanup       []func()
}

func (a *app) demo(name string, args []string) error {
	fs := a.newFlagSet(name, demoHelp)
	verbose := fs.Bool("v", false, "print each error whole, with its full chain")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("demo takes no arguments")
	}
	// A bound for the whole demo, far above what it needs: only a hung
	// sandbox would meet it.
	ctx, cancel := context.WithTimeout(a.ctx, 5*time.Minute)
	defer cancel()
	w := a.stdout
	fmt.Fprintln(w, "wechatpay demo: every step runs against an embedded sandbox that speaks the")
	fmt.Fprintln(w, "real APIv3 protocol, with generated credentials.")

	r := &demoRun{ctx: ctx, verbose: *verbose, notes: make(chan *middleware.Notification, 4), attempts: make(chan wechatpaytest.Delivery, 16)}
	defer r.close()
	var failed []string
	steps := demoSteps()
	for i, st := range steps {
		fmt.Fprintf(w, "\n%d. %s\n", i+1, st.title)
		lines, err := st.run(r)
		for _, l := range lines {
			fmt.Fprintf(w, "   %s\n", l)
		}
		if err == nil {
			fmt.Fprintf(w, "   ok\n")
			continue
		}
		fmt.Fprintf(w, "   FAILED: %s\n", errorText(err, *verbose))
		failed = append(failed, st.title)
		if st.essential {
			return &exitError{code: exitFailure, msg: fmt.Sprintf("wechatpay demo: step %d failed, and the steps after it need it: %s", i+1, st.title)}
		}
	}
	io.WriteString(w, demoEnding)
	if len(failed) > 0 {
		return &exitError{code: exitFailure, msg: fmt.Sprintf("wechatpay demo: %d step(s) failed: %s", len(failed), strings.Join(failed, "; "))}
	}
	fmt.Fprintf(w, "\nAll %d steps passed.\n", len(steps))
	return nil
}

func (r *demoRun) close() {
	for i := len(r.cleanup) - 1; i >= 0; i-- {
		r.cleanup[i]()
	}
}

// errorText is an error as the demo prints it: short, or whole with -v.
func errorText(err error, verbose bool) string {
	if verbose {
		return err.Error()
	}
	return shortError(err)
}

func (r *demoRun) setup() ([]string, error) {
	r.srv = wechatpaytest.NewServer(wechatpaytest.WithRefundDelay(200*time.Millisecond),
		wechatpaytest.OnDelivery(func(d wechatpaytest.Delivery) {
			select {
			case r.attempts <- d:
			default:
			}
		}))
	r.cleanup = append(r.cleanup, r.srv.Close)
	r.m = r.srv.Merchant()
	cfg := r.srv.Config()
	var err error
	if r.store, err = wechatpay.NewStore(wechatpay.StoreOptions{MinRefreshInterval: demoMinRefresh}); err != nil {
		return nil, err
	}
	r.cleanup = append(r.cleanup, func() { r.store.Close() })
	cfg.Store = r.store // shared with the middleware below
	t, err := wechatpay.NewTransport(cfg)
	if err != nil {
		return nil, err
	}
	r.client = &http.Client{Transport: t}
	r.pay = &payments.Client{HTTP: r.client, MerchantID: r.m.ID, AppID: demoAppID}
	h := middleware.Notifications(middleware.Config{Keys: r.store, MerchantID: r.m.ID, APIv3Key: r.m.APIv3Key})(
		http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			n, _ := middleware.NotificationFrom(req.Context())
			r.notes <- n
		}))
	r.callback = httptest.NewServer(h)
	r.cleanup = append(r.cleanup, r.callback.Close)
	return []string{
		"merchant ID (mchid):          " + r.m.ID,
		"merchant certificate serial:  " + r.m.CertificateSerial,
		"private key, APIv3 key:       loaded (never printed)",
		"sandbox:                      " + r.srv.URL,
		"merchant's callback server:   " + r.notifyURL() + " (middleware.Notifications)",
	}, nil
}

func (r *demoRun) notifyURL() string { return r.callback.URL + "/wechatpay/notify" }

func (r *demoRun) certificates() ([]string, error) {
	if err := r.store.Refresh(r.ctx, r.m.ID); err != nil {
		return nil, err
	}
	var lines []string
	for _, c := range r.store.Certificates(r.m.ID) {
		lines = append(lines, fmt.Sprintf("platform certificate %s, valid until %s", wire.CertSerial(c), c.NotAfter.UTC().Format(time.DateOnly)))
	}
	return append(lines, "decrypted with the APIv3 key (AEAD_AES_256_GCM); the download's own signature verified"), nil
}

func (r *demoRun) order() payments.PrepayRequest {
	return payments.PrepayRequest{Description: "Sandbox tea", OutTradeNo: demoOutTradeNo, NotifyURL: r.notifyURL(),
		Amount: payments.OrderAmount{Total: 100, Currency: "CNY"}}
}

func (r *demoRun) placeOrder() ([]string, error) {
	codeURL, err := r.pay.PrepayNative(r.ctx, r.order())
	if err != nil {
		return nil, err
	}
	return []string{
		"pay.PrepayNative: order " + demoOutTradeNo + ", " + payments.FormatAmount(100, "CNY") + ", \"Sandbox tea\"",
		"POST /v3/pay/transactions/native answered, signed by the platform certificate, verified",
		"code_url: " + codeURL + " (the payer's cashier page)",
	}, nil
}

func (r *demoRun) queryUnpaid() ([]string, error) {
	tx, err := r.pay.QueryByOutTradeNo(r.ctx, demoOutTradeNo)
	if err != nil {
		return nil, err
	}
	if tx.TradeState != "NOTPAY" {
		return nil, fmt.Errorf("trade_state %s, want NOTPAY", tx.TradeState)
	}
	return []string{fmt.Sprintf("pay.QueryByOutTradeNo(%s): trade_state %s (%s)", demoOutTradeNo, tx.TradeState, tx.TradeStateDesc)}, nil
}

// get makes a signed GET of the order's query path through the
// merchant's client and returns the verified response.
func (r *demoRun) get() (*http.Response, error) {
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, r.srv.URL+"/v3/pay/transactions/out-trade-no/"+demoOutTradeNo+"?mchid="+r.m.ID, nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, wechatpay.CheckResponse(resp)
}

func (r *demoRun) rotation() ([]string, error) {
	serial := r.srv.AddCertificate(r.m.ID)
	r.srv.UseCertificate(r.m.ID, serial)
	time.Sleep(demoMinRefresh) // past the minimum refresh interval (a monotonic wait, not a budget)
	before := r.srv.MerchantCertificateDownloads(r.m.ID)
	resp, err := r.get()
	if err != nil {
		return nil, err
	}
	after := r.srv.MerchantCertificateDownloads(r.m.ID)
	lines := []string{
		"WeChat Pay listed a new certificate and now signs with it: " + serial,
		fmt.Sprintf("the next call met the unknown serial, downloaded once and verified: %s signed by %s", resp.Status, resp.Header.Get(wire.HeaderSerial)),
		fmt.Sprintf("certificate downloads: %d before, %d after", before, after),
	}
	if after != before+1 {
		return lines, fmt.Errorf("want exactly one more download, got %d", after-before)
	}
	return lines, nil
}

// rejected runs a query while the sandbox plays fault f, and wants it
// refused as want.
func (r *demoRun) rejected(f wechatpaytest.Fault, want error, what string) ([]string, error) {
	r.srv.SetFault(f)
	defer r.srv.SetFault(wechatpaytest.FaultNone)
	_, err := r.get()
	if err == nil {
		return nil, errors.New("the response was accepted")
	}
	if !errors.Is(err, want) {
		return nil, fmt.Errorf("rejected, but not as %v: %w", want, err)
	}
	return []string{what, "rejected: " + errorText(err, r.verbose)}, nil
}

func (r *demoRun) tampered() ([]string, error) {
	return r.rejected(wechatpaytest.FaultTamperBody, wechatpay.ErrBadSignature, "the sandbox flips one bit of the body after signing it")
}

func (r *demoRun) probe() ([]string, error) {
	return r.rejected(wechatpaytest.FaultProbe, wechatpay.ErrSignatureProbe, "WeChat Pay sometimes sends WECHATPAY/SIGNTEST/... on purpose, to check that clients verify")
}

func (r *demoRun) publicKeyMode() ([]string, error) {
	pk := wechatpaytest.NewServer(wechatpaytest.PublicKeyOnly())
	defer pk.Close()
	pcfg := pk.Config() // carries PublicKeyID and PublicKey
	t, err := wechatpay.NewTransport(pcfg)
	if err != nil {
		return nil, err
	}
	rec := &serialRecorder{next: t}
	client := &http.Client{Transport: rec}
	pay := &payments.Client{HTTP: client, MerchantID: pk.Merchant().ID, AppID: demoAppID}
	if _, err := pay.PrepayNative(r.ctx, r.order()); err != nil {
		return nil, err
	}
	lines := []string{
		"a merchant registered since late 2024 has a public key " + pcfg.PublicKeyID + " and no platform certificates",
		fmt.Sprintf("the call sent Wechatpay-Serial: %s; the response was signed with it and verified", pcfg.PublicKeyID),
		fmt.Sprintf("certificate downloads: %d", pk.CertificateDownloads()),
	}
	if rec.serial != pcfg.PublicKeyID {
		return lines, fmt.Errorf("response signed by %s, want the public key", rec.serial)
	}
	if pk.CertificateDownloads() != 0 {
		return lines, errors.New("a public-key merchant should need no certificate download")
	}
	return lines, nil
}

// serialRecorder notes the Wechatpay-Serial of the last verified answer.
// Like any well-behaved wrapper it unwraps, so that payments.Client finds
// the Transport's BaseURL behind it.
type serialRecorder struct {
	next   http.RoundTripper
	serial string
}

func (s *serialRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(req)
	if err == nil {
		s.serial = resp.Header.Get(wire.HeaderSerial)
	}
	return resp, err
}

func (s *serialRecorder) Unwrap() http.RoundTripper { return s.next }

// awaitCallback waits for the merchant's handler to receive a
// notification of the given event type.
func (r *demoRun) awaitCallback(eventType string) (*middleware.Notification, error) {
	select {
	case n := <-r.notes:
		if n.EventType != eventType {
			return nil, fmt.Errorf("received %s, want %s", n.EventType, eventType)
		}
		return n, nil
	case <-r.ctx.Done():
		return nil, fmt.Errorf("no %s callback arrived", eventType)
	}
}

// awaitAttempt waits for the sandbox to record a delivery attempt of the
// given event type (it records one once it has read the answer).
func (r *demoRun) awaitAttempt(eventType string) (wechatpaytest.Delivery, error) {
	for {
		select {
		case d := <-r.attempts:
			if d.EventType == eventType {
				return d, nil
			}
		case <-r.ctx.Done():
			return wechatpaytest.Delivery{}, fmt.Errorf("the sandbox recorded no %s delivery", eventType)
		}
	}
}

func (r *demoRun) payerPays() ([]string, error) {
	if err := r.srv.Pay(r.m.ID, demoOutTradeNo, wechatpaytest.PaySuccess); err != nil {
		return nil, err
	}
	n, err := r.awaitCallback("TRANSACTION.SUCCESS")
	if err != nil {
		return nil, err
	}
	tx, err := n.Transaction()
	if err != nil {
		return nil, err
	}
	r.transactionID = tx.TransactionID
	d, err := r.awaitAttempt("TRANSACTION.SUCCESS")
	if err != nil {
		return nil, err
	}
	// A forged copy (probe signature) never reaches the handler.
	probe, err := r.srv.Notify(r.ctx, r.notifyURL(), "TRANSACTION.SUCCESS", wechatpaytest.PaymentResource(r.m), wechatpaytest.NotifyProbe())
	if err != nil {
		return nil, err
	}
	probe.Body.Close()
	if probe.StatusCode != http.StatusUnauthorized || len(r.notes) != 0 {
		return nil, fmt.Errorf("a probe notification was answered %d", probe.StatusCode)
	}
	return []string{
		"the sandbox's cashier took the payment (as the Pay button, 'wechatpay pay' or srv.Pay do)",
		fmt.Sprintf("callback %s: order %s, transaction %s, %s, state %s, paid %s",
			n.EventType, tx.OutTradeNo, tx.TransactionID, payments.FormatAmount(tx.Amount.Total, tx.Amount.Currency), tx.TradeState,
			tx.SuccessTime.Format(time.RFC3339)),
		fmt.Sprintf("delivery attempt %d: the handler answered %d", d.Attempt, d.Status),
		"a probe-signed copy was answered 401 and never reached the handler",
	}, nil
}

func (r *demoRun) queryPaid() ([]string, error) {
	tx, err := r.pay.QueryByOutTradeNo(r.ctx, demoOutTradeNo)
	if err != nil {
		return nil, err
	}
	if tx.TradeState != "SUCCESS" || tx.TransactionID != r.transactionID {
		return nil, fmt.Errorf("trade_state %s, transaction_id %s", tx.TradeState, tx.TransactionID)
	}
	return []string{fmt.Sprintf("trade_state %s, transaction_id %s, paid %s", tx.TradeState, tx.TransactionID, payments.FormatAmount(tx.Amount.PayerTotal, "CNY"))}, nil
}

func refundOf(outRefundNo string, fen int64) payments.RefundRequest {
	return payments.RefundRequest{OutTradeNo: demoOutTradeNo, OutRefundNo: outRefundNo, Reason: "demo",
		Amount: payments.RefundAmount{Refund: fen, Total: 100, Currency: "CNY"}}
}

func (r *demoRun) refund() ([]string, error) {
	rf, err := r.pay.Refund(r.ctx, refundOf("DEMOREFUND1", 30))
	if err != nil {
		return nil, err
	}
	lines := []string{fmt.Sprintf("pay.Refund: refund %s of %s, status %s", rf.RefundID, payments.FormatAmount(30, "CNY"), rf.Status)}
	n, err := r.awaitCallback("REFUND.SUCCESS")
	if err != nil {
		return lines, err
	}
	got, err := n.Refund()
	if err != nil {
		return lines, err
	}
	lines = append(lines, fmt.Sprintf("callback %s: refund %s of order %s, %s of %s, status %s",
		n.EventType, got.OutRefundNo, got.OutTradeNo, payments.FormatAmount(got.Amount.Refund, "CNY"), payments.FormatAmount(got.Amount.Total, "CNY"), got.RefundStatus))
	q, err := r.pay.QueryRefund(r.ctx, "DEMOREFUND1")
	if err != nil {
		return lines, err
	}
	tx, err := r.pay.QueryByOutTradeNo(r.ctx, demoOutTradeNo)
	if err != nil {
		return lines, err
	}
	lines = append(lines, fmt.Sprintf("refund query: status %s; order trade_state %s", q.Status, tx.TradeState))
	if q.Status != "SUCCESS" || tx.TradeState != "REFUND" {
		return lines, errors.New("the refund did not end in SUCCESS with the order in REFUND")
	}
	return lines, nil
}

func (r *demoRun) overRefund() ([]string, error) {
	_, err := r.pay.Refund(r.ctx, refundOf("DEMOREFUND2", 71))
	var apiErr *wechatpay.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != "INVALID_REQUEST" {
		return nil, fmt.Errorf("got %v; want INVALID_REQUEST", err)
	}
	return []string{fmt.Sprintf("%s of the %s left: HTTP %d %s %s", payments.FormatAmount(71, "CNY"), payments.FormatAmount(70, "CNY"), apiErr.StatusCode, apiErr.Code, apiErr.Message)}, nil
}
