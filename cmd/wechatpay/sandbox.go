package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/wxpaykit/wechatpay/internal/atomicfile"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

var sandboxHelp = help{
	synopsis: "sandbox [-addr HOST:PORT] [-dir DIR] [-state FILE] [-retry-scale N] [-public-key-only | -migrating]",
	text: `Runs the WeChat Pay simulator as a server until interrupted (SIGINT or
SIGTERM). It speaks the real APIv3 protocol: it checks every Authorization,
serves /v3/certificates, and signs every response, with a platform
certificate or, when the request names it in Wechatpay-Serial, with a WeChat
Pay public key.

It keeps orders and refunds with their real lifecycle: prepay (JSAPI, App,
H5, Native; direct and service provider), query, close, refunds, the day's
trade bill, each validated and answered as WeChat Pay does. An order's
code_url and h5_url lead to a cashier page where you pay (or fail) it; so
does 'wechatpay pay'. A payment or refund sends a signed, encrypted
notification to the order's notify_url, retried on WeChat Pay's schedule
(15s, 15s, 30s, 3m, ... 24h4m in all) until it answers 200 or 204 within
5 s; every attempt is printed here. The package documentation of
github.com/wxpaykit/wechatpay/wechatpaytest lists every route, and the
control endpoints /sandbox/pay and /sandbox/faults (SYSTEM_ERROR, timeouts,
FREQUENCY_LIMITED on demand).

It writes into DIR merchant.json, with the keys mchid, serial, private_key,
certificate, apiv3_key, base_url, public_key_id and public_key (private_key,
certificate and public_key name files in DIR: apiclient_key.pem,
apiclient_cert.pem, whose serial is merchant.json's serial, and pub_key.pem),
so that any client in any language can use it. The credentials are generated
and worthless outside the sandbox; merchant.json and apiclient_key.pem are
readable by you alone.

By default the merchant has a platform certificate and a WeChat Pay public
key, and answers name the public key only when the request's Wechatpay-Serial
does. -public-key-only plays the merchant most new merchants are: no platform
certificate, /v3/certificates answers 404 RESOURCE_NOT_EXISTS, and every
answer and callback is signed with the public key (Wechatpay-Serial:
PUB_KEY_ID_...). -migrating plays a merchant switching to the public key:
callbacks are signed in turn with either key.

With -state FILE the merchant, its orders and refunds survive a restart
(a JSON file, rewritten atomically on every change); otherwise they live in
memory. -retry-scale N divides the retry schedule by N, to watch retries
without waiting hours.

What differs from production: the sandbox listens on plain http; code_url and
h5_url lead to its cashier page (http://HOST:PORT/sandbox/cashier?prepay_id=...)
where production's code_url is weixin://wxpay/bizpayurl?pr=... for the WeChat
app to scan; it accepts http notify_urls, which WeChat Pay refuses, and prints
a warning with each such callback; /sandbox/... are its own endpoints.`,
	example: `wechatpay sandbox -addr 127.0.0.1:0 -dir /tmp/sandbox &
wechatpay post -sandbox-dir /tmp/sandbox /v3/pay/transactions/native -d '{"description":"tea","out_trade_no":"ORDER20261202001","notify_url":"https://merchant.example/wechatpay/notify","amount":{"total":100}}'
wechatpay pay -sandbox-dir /tmp/sandbox ORDER20261202001`,
}

func (a *app) sandbox(name string, args []string) error {
	fs := a.newFlagSet(name, sandboxHelp)
	addr := fs.String("addr", "127.0.0.1:8080", "listen on `HOST:PORT`; port 0 picks a free port")
	dir := fs.String("dir", "", "write merchant.json and the key files into `DIR` (default a new temporary directory)")
	state := fs.String("state", "", "keep the merchant, orders and refunds in `FILE` across restarts")
	scale := fs.Int("retry-scale", 1, "divide WeChat Pay's callback retry schedule by `N`")
	pubOnly := fs.Bool("public-key-only", false, "no platform certificates: everything is signed with the WeChat Pay public key")
	migrating := fs.Bool("migrating", false, "sign callbacks in turn with the platform certificate and the public key, as during a migration")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *scale < 1 {
		return usagef("-retry-scale %d: want 1 or more", *scale)
	}
	if *pubOnly && *migrating {
		return usagef("-public-key-only and -migrating exclude each other: a public-key-only merchant has no platform certificate to migrate from")
	}
	// Listen first, so that a busy port is an error rather than a panic
	// inside NewServer; the sandbox then takes the freed address.
	if _, _, err := net.SplitHostPort(*addr); err != nil {
		return usagef("-addr %q: %v", *addr, err)
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	listenAddr := l.Addr().String()
	l.Close()

	if *dir == "" {
		d, err := os.MkdirTemp("", "wechatpay-sandbox-")
		if err != nil {
			return err
		}
		*dir = d
	} else if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(a.ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	out := &lockedWriter{w: a.stdout}
	opts := []wechatpaytest.Option{
		wechatpaytest.WithAddr(listenAddr), wechatpaytest.WithPublicKey(),
		wechatpaytest.OnDelivery(func(d wechatpaytest.Delivery) { fmt.Fprintf(out, "callback: %s\n", d) }),
	}
	switch {
	case *pubOnly:
		opts = append(opts, wechatpaytest.PublicKeyOnly())
	case *migrating:
		opts = append(opts, wechatpaytest.Migrating())
	}
	if *scale > 1 {
		retries := wechatpaytest.RetrySchedule()
		for i := range retries {
			retries[i] /= time.Duration(*scale)
		}
		opts = append(opts, wechatpaytest.WithCallbackSchedule(5*time.Second, retries...))
	}
	if *state != "" {
		opts = append(opts, wechatpaytest.WithStateFile(*state))
	}
	srv, err := startSandbox(opts...)
	if err != nil {
		return err
	}
	defer srv.Close()
	if err := writeSandboxDir(*dir, srv); err != nil {
		return err
	}
	fmt.Fprintf(out, "sandbox listening on %s\n", srv.URL)
	fmt.Fprintf(out, "credentials in %s\n", filepath.Join(*dir, "merchant.json"))
	switch {
	case *pubOnly:
		fmt.Fprintf(out, "public-key-only merchant: no platform certificates; everything is signed with %s\n", srv.Merchant().PublicKeyID)
	case *migrating:
		fmt.Fprintf(out, "migrating merchant: callbacks are signed in turn with %s and the platform certificate\n", srv.Merchant().PublicKeyID)
	}
	if *state != "" {
		fmt.Fprintf(out, "state kept in %s\n", *state)
	}
	fmt.Fprintf(out, "merchant %s; place an order, open its code_url (the cashier) or run: wechatpay pay -sandbox-dir %s OUT_TRADE_NO\n", srv.Merchant().ID, *dir)
	if a.ready != nil {
		a.ready(srv.URL, *dir)
	}
	<-ctx.Done()
	srv.Close() // before the last line: no callback line after it
	fmt.Fprintln(out, "sandbox stopped")
	return nil
}

// lockedWriter serialises writes from the sandbox's callback goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// startSandbox starts a sandbox. The address was free a moment ago; if
// another process took it since, or the state file cannot be read,
// NewServer panics, which becomes an error here.
func startSandbox(opts ...wechatpaytest.Option) (srv *wechatpaytest.Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("sandbox: %v", r)
		}
	}()
	return wechatpaytest.NewServer(opts...), nil
}

// sandboxDirFile is merchant.json as the sandbox writes it: the keys the
// credential flags read, and the merchant certificate's file.
type sandboxDirFile struct {
	sandboxFile
	Certificate string `json:"certificate"`
}

// writeSandboxDir writes merchant.json, apiclient_key.pem,
// apiclient_cert.pem and pub_key.pem.
func writeSandboxDir(dir string, srv *wechatpaytest.Server) error {
	m := srv.Merchant()
	der, err := x509.MarshalPKCS8PrivateKey(m.PrivateKey)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "apiclient_key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "apiclient_cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: m.Certificate.Raw}), 0o644); err != nil {
		return err
	}
	f := sandboxDirFile{Certificate: "apiclient_cert.pem", sandboxFile: sandboxFile{
		MchID:      m.ID,
		Serial:     m.CertificateSerial,
		PrivateKey: "apiclient_key.pem",
		APIv3Key:   m.APIv3Key,
		BaseURL:    srv.URL,
	}}
	if m.PublicKey != nil {
		pub, err := x509.MarshalPKIXPublicKey(m.PublicKey)
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(filepath.Join(dir, "pub_key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
			return err
		}
		f.PublicKeyID, f.PublicKey = m.PublicKeyID, "pub_key.pem"
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "merchant.json"), append(data, '\n'), 0o600)
}
