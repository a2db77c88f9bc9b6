package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/wxpaykit/wechatpay/internal/wire"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

var sandboxHelp = help{
	synopsis: "sandbox [-addr HOST:PORT] [-dir DIR]",
	text: `Runs the WeChat Pay sandbox as a server until interrupted (SIGINT or SIGTERM).
It speaks the real APIv3 protocol: it checks every Authorization, serves
/v3/certificates, and signs every response, with a platform certificate or,
when the request names it in Wechatpay-Serial, with a WeChat Pay public key.
A few payment routes answer with sample data (see below); others get a
signed 404.

It writes into DIR merchant.json, with the keys mchid, serial, private_key,
apiv3_key, base_url, public_key_id and public_key (the two key entries name
files in DIR: apiclient_key.pem and pub_key.pem), so that any client in any
language can use it. The credentials are generated and worthless outside the
sandbox; merchant.json and apiclient_key.pem are readable by you alone.

Sample routes: GET /v3/pay/transactions/id/{id},
GET /v3/pay/transactions/out-trade-no/{no}, POST /v3/pay/transactions/jsapi,
POST /v3/pay/transactions/native, POST /v3/pay/transactions/out-trade-no/{no}/close.`,
	example: `wechatpay sandbox -addr 127.0.0.1:0 -dir /tmp/sandbox &
wechatpay get -sandbox-dir /tmp/sandbox /v3/pay/transactions/id/4200000000000000000000000001`,
}

func (a *app) sandbox(name string, args []string) error {
	fs := a.newFlagSet(name, sandboxHelp)
	addr := fs.String("addr", "127.0.0.1:8080", "listen on `HOST:PORT`; port 0 picks a free port")
	dir := fs.String("dir", "", "write merchant.json and the key files into `DIR` (default a new temporary directory)")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
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

	srv, err := startSandbox(listenAddr)
	if err != nil {
		return err
	}
	defer srv.Close()
	addSandboxRoutes(srv)
	if err := writeSandboxDir(*dir, srv); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "sandbox listening on %s\n", srv.URL)
	fmt.Fprintf(a.stdout, "credentials in %s\n", filepath.Join(*dir, "merchant.json"))
	fmt.Fprintf(a.stdout, "try: wechatpay get -sandbox-dir %s /v3/pay/transactions/id/4200000000000000000000000001\n", *dir)
	if a.ready != nil {
		a.ready(srv.URL, *dir)
	}
	<-ctx.Done()
	fmt.Fprintln(a.stdout, "sandbox stopped")
	return nil
}

// startSandbox starts a sandbox with a WeChat Pay public key on addr. The
// address was free a moment ago; if another process took it since,
// NewServer panics, which becomes an error here.
func startSandbox(addr string) (srv *wechatpaytest.Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("sandbox: %v", r)
		}
	}()
	return wechatpaytest.NewServer(wechatpaytest.WithAddr(addr), wechatpaytest.WithPublicKey()), nil
}

// writeSandboxDir writes merchant.json, apiclient_key.pem and pub_key.pem.
func writeSandboxDir(dir string, srv *wechatpaytest.Server) error {
	m := srv.Merchant()
	der, err := x509.MarshalPKCS8PrivateKey(m.PrivateKey)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, "apiclient_key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	f := sandboxFile{
		MchID:      m.ID,
		Serial:     m.CertificateSerial,
		PrivateKey: "apiclient_key.pem",
		APIv3Key:   m.APIv3Key,
		BaseURL:    srv.URL,
	}
	if m.PublicKey != nil {
		pub, err := x509.MarshalPKIXPublicKey(m.PublicKey)
		if err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(dir, "pub_key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
			return err
		}
		f.PublicKeyID, f.PublicKey = m.PublicKeyID, "pub_key.pem"
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, "merchant.json"), append(data, '\n'), 0o600)
}

// addSandboxRoutes registers sample payment routes, so that the commands
// have something to call. Their answers are shaped like WeChat Pay's but
// carry made-up data.
func addSandboxRoutes(srv *wechatpaytest.Server) {
	transaction := func(w http.ResponseWriter, r *http.Request, id, outTradeNo string) {
		writeJSON(w, http.StatusOK, map[string]any{
			"mchid":          wechatpaytest.MerchantIDFrom(r.Context()),
			"appid":          "wxd678efh567hg6787",
			"transaction_id": id,
			"out_trade_no":   outTradeNo,
			"trade_type":     "JSAPI",
			"trade_state":    "SUCCESS",
			"amount":         map[string]any{"total": 100, "payer_total": 100, "currency": "CNY"},
		})
	}
	srv.Handle("GET /v3/pay/transactions/id/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		transaction(w, r, r.PathValue("id"), "T1001")
	}))
	srv.Handle("GET /v3/pay/transactions/out-trade-no/{no}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		transaction(w, r, "4200000000000000000000000001", r.PathValue("no"))
	}))
	order := func(field, prefix string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var req map[string]any
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]any{"code": "PARAM_ERROR", "message": "请求体不是有效的JSON"})
				return
			}
			if _, ok := req["out_trade_no"].(string); !ok {
				writeJSON(w, http.StatusBadRequest, map[string]any{"code": "PARAM_ERROR", "message": "缺少参数out_trade_no",
					"detail": map[string]any{"field": "/out_trade_no", "location": "body", "issue": "required"}})
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{field: prefix + strings.ToLower(wire.NewNonce())})
		})
	}
	srv.Handle("POST /v3/pay/transactions/jsapi", order("prepay_id", "wx"))
	srv.Handle("POST /v3/pay/transactions/native", order("code_url", "weixin://wxpay/bizpayurl?pr="))
	srv.Handle("POST /v3/pay/transactions/out-trade-no/{no}/close", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
