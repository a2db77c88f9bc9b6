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
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

var demoHelp = help{
	synopsis: "demo",
	text: `Starts an embedded sandbox and walks through what the library does, printing
each step and its outcome: credentials, certificate download and
verification, a signed call with a verified response, a certificate rotation
met by one lazy download, a tampered response rejected, a signature probe
recognised, public-key mode, and a callback notification verified and
decrypted by the middleware. Needs no account and no flags. Ends with
the Go code that wires a real client.`,
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

	srv := wechatpaytest.NewServer()
	defer srv.Close()
	addSandboxRoutes(srv)
	m := srv.Merchant()
	const path = "/v3/pay/transactions/id/4200000000000000000000000001"

	// A small MinRefreshInterval lets the rotation step below download
	// again right after the first download; in production keep the
	// default (1 minute), which stops forged serials from causing floods.
	const minRefresh = 10 * time.Millisecond
	var (
		store  *wechatpay.Store
		client *http.Client
		cfg    wechatpay.Config
	)
	get := func(c *http.Client, base string) (*http.Response, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return nil, nil, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		if err := wechatpay.CheckResponse(resp); err != nil {
			return nil, nil, err
		}
		body, err := io.ReadAll(resp.Body)
		return resp, body, err
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
		return []string{
			"merchant ID (mchid):          " + m.ID,
			"merchant certificate serial:  " + m.CertificateSerial,
			"private key, APIv3 key:       loaded (never printed)",
			"sandbox:                      " + srv.URL,
		}, nil
	})
	if client == nil {
		return &exitError{code: exitFailure, msg: "wechatpay demo: could not set up the client"}
	}
	defer store.Close()

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

	d.step("A signed call, and its response verified", func() ([]string, error) {
		resp, body, err := get(client, srv.URL)
		if err != nil {
			return nil, err
		}
		if !wechatpay.IsVerified(resp) {
			return nil, errors.New("the response was not verified")
		}
		return []string{
			"GET " + path,
			fmt.Sprintf("%s, signed by platform certificate %s, verified", resp.Status, resp.Header.Get(wire.HeaderSerial)),
			"body: " + strings.TrimSpace(string(body)),
		}, nil
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
		addSandboxRoutes(pk)
		pcfg := pk.Config() // carries PublicKeyID and PublicKey
		t, err := wechatpay.NewTransport(pcfg)
		if err != nil {
			return nil, err
		}
		resp, _, err := get(&http.Client{Transport: t}, pk.URL)
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

	d.step("Receive a callback notification (verified, then decrypted)", func() ([]string, error) {
		var got *middleware.Notification
		h := middleware.Notifications(middleware.Config{Keys: store, MerchantID: m.ID, APIv3Key: m.APIv3Key})(
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, _ = middleware.NotificationFrom(r.Context())
			}))
		merchant := httptest.NewServer(h)
		defer merchant.Close()
		resp, err := srv.Notify(ctx, merchant.URL+"/wechatpay/notify", "TRANSACTION.SUCCESS", wechatpaytest.PaymentResource(m))
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || got == nil {
			return nil, fmt.Errorf("the merchant's endpoint answered %d", resp.StatusCode)
		}
		tx, err := got.Transaction()
		if err != nil {
			return nil, err
		}
		// A forged copy (probe signature) never reaches the handler.
		got = nil
		probe, err := srv.Notify(ctx, merchant.URL+"/wechatpay/notify", "TRANSACTION.SUCCESS", wechatpaytest.PaymentResource(m), wechatpaytest.NotifyProbe())
		if err != nil {
			return nil, err
		}
		probe.Body.Close()
		if got != nil || probe.StatusCode != http.StatusUnauthorized {
			return nil, fmt.Errorf("a probe notification was answered %d", probe.StatusCode)
		}
		return []string{
			fmt.Sprintf("%s %s: order %s, %d %s, state %s", tx.TransactionID, "TRANSACTION.SUCCESS", tx.OutTradeNo, tx.Amount.Total, tx.Amount.Currency, tx.TradeState),
			"answered 204; a probe-signed copy was answered 401 and never reached the handler",
		}, nil
	})

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
