package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// result is what one run of the command produced.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// runApp runs the command in-process with env as its whole environment.
func runApp(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	return runAppCtx(t, context.Background(), nil, env, stdin, args...)
}

func runAppCtx(t *testing.T, ctx context.Context, ready func(string, string), env map[string]string, stdin string, args ...string) result {
	t.Helper()
	return runAppTo(t, ctx, ready, env, stdin, &watchBuffer{}, args...)
}

// runAppTo runs the command with stdout written to out, which the test
// may watch while it runs.
func runAppTo(t *testing.T, ctx context.Context, ready func(string, string), env map[string]string, stdin string, out *watchBuffer, args ...string) result {
	t.Helper()
	var stderr bytes.Buffer
	a := &app{
		ctx:    ctx,
		getenv: func(k string) string { return env[k] },
		stdin:  strings.NewReader(stdin),
		stdout: out,
		stderr: &stderr,
		ready:  ready,
	}
	code := a.main(args)
	return result{code, out.String(), stderr.String()}
}

// watchBuffer is a command's standard output that a test can wait on.
type watchBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed on the next write
}

func (w *watchBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if w.changed != nil {
		close(w.changed)
		w.changed = nil
	}
	return n, err
}

func (w *watchBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor blocks until the output contains s: an event, not a guess at
// how long printing takes.
func (w *watchBuffer) waitFor(s string) {
	for {
		w.mu.Lock()
		if strings.Contains(w.buf.String(), s) {
			w.mu.Unlock()
			return
		}
		if w.changed == nil {
			w.changed = make(chan struct{})
		}
		ch := w.changed
		w.mu.Unlock()
		<-ch
	}
}

// addSampleRoute registers, as the test's own route (which takes
// precedence over the simulator's), a transaction query that answers any
// transaction_id with fixed sample data.
func addSampleRoute(srv *wechatpaytest.Server) {
	srv.Handle("GET /v3/pay/transactions/id/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"mchid":          wechatpaytest.MerchantIDFrom(r.Context()),
			"appid":          "wxd678efh567hg6787",
			"transaction_id": r.PathValue("id"),
			"out_trade_no":   "T1001",
			"trade_type":     "JSAPI",
			"trade_state":    "SUCCESS",
			"amount":         map[string]any{"total": 100, "payer_total": 100, "currency": "CNY"},
		})
	}))
}

// fixture is a sandbox and the credential flags of its merchant.
type fixture struct {
	srv   *wechatpaytest.Server
	m     wechatpaytest.Merchant
	dir   string
	flags []string
	env   map[string]string // the same credentials as environment variables
}

func newFixture(t *testing.T, opts ...wechatpaytest.Option) *fixture {
	t.Helper()
	srv := wechatpaytest.NewServer(opts...)
	t.Cleanup(srv.Close)
	addSampleRoute(srv)
	srv.Handle("POST /v3/test/echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Echo-Header", r.Header.Get("X-Test"))
		w.Write(body)
	}))
	srv.Handle("GET /v3/test/header", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"x_test":%q,"query":%q}`, r.Header.Get("X-Test"), r.URL.RawQuery)
	}))
	m := srv.Merchant()
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "apiclient_key.pem")
	writeKey(t, keyPath, m)
	f := &fixture{srv: srv, m: m, dir: dir}
	f.flags = []string{"-mchid", m.ID, "-serial", m.CertificateSerial, "-key", keyPath, "-apiv3-key", m.APIv3Key, "-base-url", srv.URL}
	f.env = map[string]string{
		"WECHATPAY_MCHID":       m.ID,
		"WECHATPAY_SERIAL":      m.CertificateSerial,
		"WECHATPAY_PRIVATE_KEY": keyPath,
		"WECHATPAY_APIV3_KEY":   m.APIv3Key,
		"WECHATPAY_BASE_URL":    srv.URL,
	}
	if m.PublicKey != nil {
		pubPath := filepath.Join(dir, "pub_key.pem")
		der, err := x509.MarshalPKIXPublicKey(m.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
		f.flags = append(f.flags, "-public-key-id", m.PublicKeyID, "-public-key", pubPath)
	}
	return f
}

func writeKey(t *testing.T, path string, m wechatpaytest.Merchant) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(m.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// run runs a command with the fixture's credential flags appended, and
// checks that no secret of the merchant appears in the output.
func (f *fixture) run(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	r := runApp(t, nil, stdin, append(args, f.flags...)...)
	f.checkNoSecrets(t, r)
	return r
}

func (f *fixture) checkNoSecrets(t *testing.T, r result) {
	t.Helper()
	for _, out := range []string{r.stdout, r.stderr} {
		if strings.Contains(out, f.m.APIv3Key) {
			t.Errorf("output contains the APIv3 key:\n%s", r)
		}
		if strings.Contains(out, "PRIVATE KEY") {
			t.Errorf("output contains a private key:\n%s", r)
		}
	}
}

func wantCode(t *testing.T, r result, code int, contains ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d\n%s", r.code, code, r)
	}
	for _, s := range contains {
		if !strings.Contains(r.stdout+r.stderr, s) {
			t.Errorf("output lacks %q\n%s", s, r)
		}
	}
}

func TestTopLevel(t *testing.T) {
	wantCode(t, runApp(t, nil, ""), exitUsage, "Commands:")
	wantCode(t, runApp(t, nil, "", "frobnicate"), exitUsage, `unknown command "frobnicate"`)
	r := runApp(t, nil, "", "help")
	wantCode(t, r, exitOK, "wechatpay demo", "-sandbox-dir", "WECHATPAY_APIV3_KEY")
	if r.stderr != "" {
		t.Errorf("help wrote to stderr: %q", r.stderr)
	}
	wantCode(t, runApp(t, nil, "", "help", "certs"), exitOK, "Usage: wechatpay certs")
}

func TestRunEntryPoint(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"sign", "-h"}, strings.NewReader(""), &stdout, &stderr); code != exitOK {
		t.Fatalf("run(sign -h) = %d, want 0; stderr %q", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "Usage: wechatpay sign") {
		t.Errorf("run(sign -h) printed %q", stdout.String())
	}
}

func TestEveryCommandHasHelpWithExample(t *testing.T) {
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			r := runApp(t, nil, "", c.name, "-h")
			wantCode(t, r, exitOK, "Usage: wechatpay "+c.name, "Example:\n\n\twechatpay ")
			if r.stderr != "" {
				t.Errorf("-h wrote to stderr: %q", r.stderr)
			}
		})
	}
}

func TestBadFlagIsUsageError(t *testing.T) {
	r := runApp(t, nil, "", "get", "-no-such-flag", "/v3/x")
	wantCode(t, r, exitUsage, "flag provided but not defined", "wechatpay get -h")
	wantCode(t, runApp(t, nil, "", "get", "-sandbox"), exitUsage, "want exactly one PATH")
	wantCode(t, runApp(t, nil, "", "get", "-sandbox", "v3/x"), exitUsage, "must start with /")
	wantCode(t, runApp(t, nil, "", "get", "-sandbox", "-H", "no colon", "/v3/x"), exitUsage, "want 'Name: value'")
	wantCode(t, runApp(t, nil, "", "post", "-sandbox", "/v3/x", "-d", "@/no/such/file"), exitUsage, "/no/such/file")
	wantCode(t, runApp(t, nil, "", "get", "-sandbox", "-mchid", "1", "/v3/x"), exitUsage, "-sandbox brings its own credentials")
}

func TestMissingCredentials(t *testing.T) {
	r := runApp(t, nil, "", "get", "/v3/certificates")
	wantCode(t, r, exitUsage,
		"-mchid", "WECHATPAY_MCHID", "-serial", "WECHATPAY_SERIAL", "-key", "WECHATPAY_PRIVATE_KEY",
		"-apiv3-key", "WECHATPAY_APIV3_KEY", "-public-key-id", "-sandbox")
	if n := strings.Count(r.stderr, "missing or bad credentials"); n != 1 {
		t.Errorf("want one message, got %d:\n%s", n, r)
	}
	if r.stdout != "" {
		t.Errorf("stdout not empty: %q", r.stdout)
	}
}

func TestBadCredentialsAllNamedAndNotEchoed(t *testing.T) {
	const secretKey = "not-the-right-length-SECRET" // 27 bytes
	const pemInEnv = "-----BEGIN PRIVATE KEY-----\nMIIEvSECRETSECRET\n-----END PRIVATE KEY-----\n"
	env := map[string]string{
		"WECHATPAY_MCHID":         "1900000001",
		"WECHATPAY_SERIAL":        "ABC",
		"WECHATPAY_PRIVATE_KEY":   pemInEnv,
		"WECHATPAY_APIV3_KEY":     secretKey,
		"WECHATPAY_BASE_URL":      "ftp://example.com",
		"WECHATPAY_PUBLIC_KEY_ID": "NOT_A_PUB_KEY",
	}
	r := runApp(t, env, "", "get", "/v3/certificates")
	wantCode(t, r, exitUsage,
		"merchant private key (from $WECHATPAY_PRIVATE_KEY) holds PEM text",
		"APIv3 key (from $WECHATPAY_APIV3_KEY) must be exactly 32 bytes (got 27)",
		"base URL (from $WECHATPAY_BASE_URL)",
		"does not start with PUB_KEY_ID_",
		"WeChat Pay public key file",
	)
	for _, secret := range []string{secretKey, "SECRETSECRET"} {
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("output echoes a secret %q:\n%s", secret, r)
		}
	}

	// A flag overrides the environment; a key file that does not exist is named.
	r = runApp(t, env, "", "sign", "-url", "/v3/x", "-key", "/no/such/key.pem")
	wantCode(t, r, exitUsage, "merchant private key (from -key)", "/no/such/key.pem")
	if strings.Contains(r.stderr, "APIv3") {
		t.Errorf("sign needs no APIv3 key, but complains about it:\n%s", r)
	}
}

func TestEnvironmentFallback(t *testing.T) {
	f := newFixture(t)
	r := runApp(t, f.env, "", "get", "/v3/pay/transactions/id/42")
	f.checkNoSecrets(t, r)
	wantCode(t, r, exitOK, `"transaction_id":"42"`)
}

func TestSandboxDirCredentials(t *testing.T) {
	f := newFixture(t)
	file := sandboxFile{MchID: f.m.ID, Serial: f.m.CertificateSerial, PrivateKey: "apiclient_key.pem", APIv3Key: f.m.APIv3Key, BaseURL: f.srv.URL}
	data, _ := json.Marshal(file)
	if err := os.WriteFile(filepath.Join(f.dir, "merchant.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	r := runApp(t, map[string]string{"WECHATPAY_MCHID": "1"}, "", "get", "-sandbox-dir", f.dir, "/v3/pay/transactions/id/7")
	wantCode(t, r, exitOK, `"transaction_id":"7"`)

	r = runApp(t, nil, "", "get", "-sandbox-dir", t.TempDir(), "/v3/x")
	wantCode(t, r, exitUsage, "merchant.json", "wechatpay sandbox -dir")
}

func TestFlagsBeforeAndAfterPath(t *testing.T) {
	f := newFixture(t)
	for _, args := range [][]string{
		{"get", "-H", "X-Test: a b", "/v3/test/header?x=1"},
		{"get", "/v3/test/header?x=1", "-H", "X-Test: a b"},
	} {
		r := f.run(t, "", args...)
		wantCode(t, r, exitOK)
		if want := `{"x_test":"a b","query":"x=1"}`; r.stdout != want {
			t.Errorf("%q: stdout %q, want %q", args, r.stdout, want)
		}
	}
}

func TestDoubleDash(t *testing.T) {
	f := newFixture(t)
	args := append(append([]string{"get"}, f.flags...), "-H", "X-Test: z", "--", "/v3/test/header")
	r := runApp(t, nil, "", args...)
	wantCode(t, r, exitOK, `"x_test":"z"`)
}

func TestParseInterleaved(t *testing.T) {
	a := &app{stdout: io.Discard, stderr: io.Discard}
	fs := a.newFlagSet("x", help{})
	v := fs.Bool("v", false, "")
	d := fs.String("d", "", "")
	pos, err := fs.parse([]string{"a", "-v", "b", "-d", "-x-", "c", "--", "-v", "d"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(pos, ","), "a,b,c,-v,d"; got != want {
		t.Errorf("positional = %s, want %s", got, want)
	}
	if !*v || *d != "-x-" {
		t.Errorf("-v = %v, -d = %q", *v, *d)
	}
}

func TestCallBodiesAndVerbose(t *testing.T) {
	f := newFixture(t)
	body := `{"out_trade_no":"T1","note":"line\nbreak"}` + "\n"
	file := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		args  []string
		stdin string
	}{
		"literal": {[]string{"post", "/v3/test/echo", "-d", body}, ""},
		"file":    {[]string{"post", "/v3/test/echo", "-d", "@" + file}, ""},
		"stdin":   {[]string{"post", "/v3/test/echo", "-d", "@-"}, body},
		"put":     {[]string{"patch", "-d", "@-", "/v3/test/echo"}, body}, // 405 from the mux
	} {
		t.Run(name, func(t *testing.T) {
			r := f.run(t, tc.stdin, tc.args...)
			if tc.args[0] == "patch" {
				wantCode(t, r, exitAPIError, "HTTP 405")
				return
			}
			wantCode(t, r, exitOK)
			if r.stdout != body {
				t.Errorf("stdout %q, want the body sent %q", r.stdout, body)
			}
			if r.stderr != "" {
				t.Errorf("stderr without -v: %q", r.stderr)
			}
		})
	}
	r := f.run(t, "", "post", "-v", "/v3/test/echo", "-d", "{}", "-H", "X-Test: v")
	wantCode(t, r, exitOK, "200 OK", "Request-ID: ", "Signature: verified (Wechatpay-Serial "+f.srv.SigningSerial(f.m.ID))
	if r.stdout != "{}" {
		t.Errorf("-v: stdout %q, want only the body", r.stdout)
	}
}

func TestCallExitStatuses(t *testing.T) {
	f := newFixture(t)
	const path = "/v3/pay/transactions/id/1"
	// Warm up: the first call downloads the certificates.
	wantCode(t, f.run(t, "", "get", path), exitOK, `"transaction_id":"1"`)

	r := f.run(t, "", "get", "/v3/no/such/route")
	wantCode(t, r, exitAPIError, "HTTP 404 NOT_FOUND", "Request-ID: ", "signature was verified")
	if r.stdout != "" {
		t.Errorf("stdout on error: %q", r.stdout)
	}
	wantCode(t, f.run(t, "", "post", "/v3/pay/transactions/jsapi", "-d", "{}"), exitAPIError,
		"PARAM_ERROR", `detail:     {"field":"/appid"`)

	for _, tc := range []struct {
		fault wechatpaytest.Fault
		why   string
	}{
		{wechatpaytest.FaultTamperBody, "signature mismatch"},
		{wechatpaytest.FaultProbe, "signature probe"},
		{wechatpaytest.FaultRandomSerial, "unknown serial"},
		{wechatpaytest.FaultNoHeaders, "missing signature"},
	} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			f.srv.SetFault(tc.fault)
			defer f.srv.SetFault(wechatpaytest.FaultNone)
			r := f.run(t, "", "get", path)
			wantCode(t, r, exitVerify, "did not verify: "+tc.why)
			if r.stdout != "" {
				t.Errorf("unverified body on stdout: %q", r.stdout)
			}
		})
	}
	t.Run("skew", func(t *testing.T) {
		f.srv.SetClockOffset(10 * 60e9)
		defer f.srv.SetClockOffset(0)
		wantCode(t, f.run(t, "", "get", path), exitVerify, "clock skew")
	})
	t.Run("network", func(t *testing.T) {
		closed := wechatpaytest.NewServer()
		url := closed.URL
		closed.Close()
		args := append([]string{"get", path}, f.flags...)
		args = append(args, "-base-url", url) // the last one wins
		r := runApp(t, nil, "", args...)
		wantCode(t, r, exitFailure, "connection refused")
	})
}

func TestPublicKeyMode(t *testing.T) {
	f := newFixture(t, wechatpaytest.PublicKeyOnly())
	r := f.run(t, "", "get", "-v", "/v3/pay/transactions/id/9")
	wantCode(t, r, exitOK, "Wechatpay-Serial "+f.m.PublicKeyID)
	if f.srv.CertificateDownloads() != 0 {
		t.Errorf("public-key mode downloaded certificates %d times", f.srv.CertificateDownloads())
	}

	// Without the public key configured, the response names a key we lack.
	args := append([]string{"get", "/v3/pay/transactions/id/9"}, f.flags[:10]...)
	r = runApp(t, nil, "", args...)
	wantCode(t, r, exitVerify, "unknown serial", f.m.PublicKeyID, "-public-key-id")

	// And certs says the merchant has none.
	wantCode(t, runApp(t, nil, "", append([]string{"certs", "-o", t.TempDir()}, f.flags[:10]...)...), exitAPIError, "RESOURCE_NOT_EXISTS", "-public-key-id")
}

func TestDemo(t *testing.T) {
	r := runApp(t, nil, "", "demo")
	wantCode(t, r, exitOK,
		"1. Load the merchant's credentials",
		"certificate downloads: 1 before, 2 after",
		"rejected: signature mismatch", "rejected: signature probe",
		"Wechatpay-Serial: PUB_KEY_ID_",
		"code_url: http://127.0.0.1:", "trade_state NOTPAY",
		"callback TRANSACTION.SUCCESS: order DEMO20240101001, transaction 4200", "1.00 CNY, state SUCCESS", "answered 204", "answered 401",
		"trade_state SUCCESS", "callback REFUND.SUCCESS: refund DEMOREFUND1 of order DEMO20240101001, 0.30 CNY of 1.00 CNY, status SUCCESS",
		"refund query: status SUCCESS; order trade_state REFUND", "HTTP 400 INVALID_REQUEST",
		"client := &http.Client{Transport: t}", "payments.Client{", "middleware.Notifications(",
		"wechatpay sandbox -dir", "wechatpaytest.NewServer()",
		"bill DEMOTRANSFER01", "state WAIT_USER_CONFIRM", "wx.requestMerchantTransfer({\"mchId\":",
		"callback MCHTRANSFER.BILL.FINISHED: bill DEMOTRANSFER01, 2500.00 CNY, state SUCCESS",
		"state SUCCESS, 2500.00 CNY; user_name decrypted with the merchant key, as sent",
		"All 17 steps passed.")
	if n := strings.Count(r.stdout, "   ok\n"); n != len(demoSteps()) || n != 17 {
		t.Errorf("want %d ok steps:\n%s", len(demoSteps()), r)
	}
	if strings.Contains(r.stdout, demoUserName) {
		t.Error("the demo printed the user's name")
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "rejected:") && len(line) > 200 {
			t.Errorf("demo prints a long error without -v: %q", line)
		}
	}
	wantCode(t, runApp(t, nil, "", "demo", "extra"), exitUsage, "no arguments")

	// -v prints each error whole: the chain, with the merchant and serial.
	v := runApp(t, nil, "", "demo", "-v")
	wantCode(t, v, exitOK, "rejected: Get \"http://127.0.0.1:", "wechatpay: verify merchant", "All 17 steps passed.")
	if strings.Contains(r.stdout, "wechatpay: verify merchant") {
		t.Errorf("without -v, the demo prints whole error chains:\n%s", r.stdout)
	}
}

// publicKeyFile writes the public half of m's merchant key as a PEM file.
func publicKeyFile(t *testing.T, path string, m wechatpaytest.Merchant) {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&m.PrivateKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}
