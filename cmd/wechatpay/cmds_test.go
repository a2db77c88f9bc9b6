package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

type vectors struct {
	MerchantID string `json:"merchant_id"`
	Serial     string `json:"serial"`
	Timestamp  int64  `json:"timestamp"`
	Nonce      string `json:"nonce"`
	Cases      []struct {
		Name, Method, URL, Body, Signature string
	} `json:"cases"`
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	data, err := os.ReadFile("../../testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) == 0 {
		t.Fatal("no vectors")
	}
	return v
}

func signArgs(v vectors, method, url string) []string {
	return []string{"sign", "-mchid", v.MerchantID, "-serial", v.Serial, "-key", "../../testdata/official_key.pem",
		"-method", method, "-url", url, "-timestamp", "1554208460", "-nonce", v.Nonce}
}

func TestSignOfficialVectors(t *testing.T) {
	v := loadVectors(t)
	for _, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			args := signArgs(v, c.Method, c.URL)
			stdin := ""
			if c.Body != "" {
				args = append(args, "-d", "@-")
				stdin = c.Body
			}
			r := runApp(t, nil, stdin, args...)
			wantAuth := `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="1900007291",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",timestamp="1554208460",serial_no="408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB",signature="` + c.Signature + `"`
			wantLines := c.Method + "\\n\n" + c.URL + "\\n\n1554208460\\n\n" + v.Nonce + "\\n\n" + c.Body + "\\n\n"
			wantCode(t, r, exitOK, wantAuth, wantLines)
		})
	}
	// A literal -d and a lower-case method give the same signature.
	c := v.Cases[0]
	args := append(signArgs(v, strings.ToLower(c.Method), "https://api.mch.weixin.qq.com"+c.URL), "-d", c.Body)
	wantCode(t, runApp(t, nil, "", args...), exitOK, `signature="`+c.Signature+`"`)
}

func TestSignShowsEveryNewline(t *testing.T) {
	v := loadVectors(t)
	r := runApp(t, nil, "", append(signArgs(v, "POST", "/v3/x?a=1"), "-d", "{\n\"a\":1}\r\n")...)
	wantCode(t, r, exitOK, "/v3/x?a=1\\n\n", "{\\n\n\"a\":1}\\r\\n\n\\n\n")
	wantCode(t, runApp(t, nil, "", "sign", "-sandbox"), exitUsage, "-url is required")
	// With -sandbox it signs as the sandbox merchant, current time.
	wantCode(t, runApp(t, nil, "", "sign", "-sandbox", "-url", "/v3/certificates"), exitOK, "Authorization: WECHATPAY2-SHA256-RSA2048 mchid=\"19")
}

func readCertFiles(t *testing.T, dir string) map[string]*x509.Certificate {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]*x509.Certificate)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "wechatpay_") || !strings.HasSuffix(e.Name(), ".pem") {
			t.Errorf("unexpected file %s left in %s", e.Name(), dir)
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		c, err := wire.ParseCertificatePEM(data)
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		serial := wire.CertSerial(c)
		if e.Name() != "wechatpay_"+serial+".pem" {
			t.Errorf("file %s holds certificate %s", e.Name(), serial)
		}
		out[serial] = c
	}
	return out
}

func TestCerts(t *testing.T) {
	f := newFixture(t)
	f.srv.AddCertificate(f.m.ID)
	dir := filepath.Join(t.TempDir(), "out")
	// A stale file of the same name is replaced whole.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "wechatpay_"+f.srv.SigningSerial(f.m.ID)+".pem")
	if err := os.WriteFile(stale, []byte("half a fi"), 0o644); err != nil {
		t.Fatal(err)
	}

	r := f.run(t, "", "certs", "-o", dir)
	wantCode(t, r, exitOK, "SERIAL", "NOT AFTER")
	got := readCertFiles(t, dir)
	want := f.srv.Certificates(f.m.ID)
	if len(got) != len(want) {
		t.Fatalf("wrote %d certificates, sandbox lists %d", len(got), len(want))
	}
	var newest *x509.Certificate
	for _, c := range want {
		g := got[wire.CertSerial(c)]
		if g == nil || !g.Equal(c) {
			t.Errorf("certificate %s missing or different", wire.CertSerial(c))
		}
		if !strings.Contains(r.stdout, wire.CertSerial(c)) {
			t.Errorf("output lacks serial %s", wire.CertSerial(c))
		}
		if newest == nil || c.NotAfter.After(newest.NotAfter) {
			newest = c
		}
	}
	var marked []string
	for line := range strings.SplitSeq(r.stdout, "\n") {
		if strings.Contains(line, " newest ") {
			marked = append(marked, line)
		}
	}
	if len(marked) != 1 {
		t.Fatalf("want one line marked newest, got %q", marked)
	}
	// Several may share the latest NotAfter; the marked one must have it.
	serial := strings.Fields(marked[0])[0]
	if !got[serial].NotAfter.Equal(newest.NotAfter) {
		t.Errorf("marked %s as newest, but %s expires later", serial, wire.CertSerial(newest))
	}

	// Default directory: the current one. Run in a fresh directory.
	t.Run("default dir", func(t *testing.T) {
		t.Chdir(t.TempDir())
		wantCode(t, f.run(t, "", "certs"), exitOK)
		if n := len(readCertFiles(t, ".")); n != len(want) {
			t.Errorf("wrote %d files in the current directory, want %d", n, len(want))
		}
	})
}

func TestCertsFailures(t *testing.T) {
	f := newFixture(t)
	t.Run("wrong APIv3 key", func(t *testing.T) {
		f.srv.SetCertFault(wechatpaytest.CertWrongAPIv3Key)
		defer f.srv.SetCertFault(wechatpaytest.CertOK)
		dir := t.TempDir()
		wantCode(t, f.run(t, "", "certs", "-o", dir), exitUsage, "the APIv3 key is wrong")
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("files written after a failure: %v", entries)
		}
	})
	t.Run("wrong APIv3 key given", func(t *testing.T) {
		args := append([]string{"certs", "-o", t.TempDir()}, f.flags...)
		args = append(args, "-apiv3-key", strings.Repeat("k", 32))
		wantCode(t, runApp(t, nil, "", args...), exitUsage, "the APIv3 key is wrong")
	})
	t.Run("wrong private key", func(t *testing.T) {
		other := wechatpaytest.NewServer()
		defer other.Close()
		keyPath := filepath.Join(t.TempDir(), "other.pem")
		writeKey(t, keyPath, other.Merchant())
		args := append([]string{"certs", "-o", t.TempDir()}, f.flags...)
		args = append(args, "-key", keyPath)
		r := runApp(t, nil, "", args...)
		wantCode(t, r, exitAPIError, "HTTP 401 SIGN_ERROR", "Request-ID: ", "sign_information", "Reproduce it with (built from an unverified answer: read it before running it): wechatpay sign -method GET -url /v3/certificates -timestamp ")
	})
	t.Run("server error", func(t *testing.T) {
		f.srv.SetCertFault(wechatpaytest.CertStatus500)
		defer f.srv.SetCertFault(wechatpaytest.CertOK)
		wantCode(t, f.run(t, "", "certs", "-o", t.TempDir()), exitAPIError, "HTTP 500 SYSTEM_ERROR")
	})
	t.Run("bad download signature", func(t *testing.T) {
		f.srv.SetCertFault(wechatpaytest.CertBadSignature)
		defer f.srv.SetCertFault(wechatpaytest.CertOK)
		wantCode(t, f.run(t, "", "certs", "-o", t.TempDir()), exitVerify, "signature mismatch")
	})
	t.Run("output is a file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		os.WriteFile(file, nil, 0o644)
		wantCode(t, f.run(t, "", "certs", "-o", file), exitFailure, "not a directory")
	})
	t.Run("missing APIv3 key", func(t *testing.T) {
		wantCode(t, runApp(t, nil, "", "certs", "-mchid", "1", "-serial", "2", "-key", "../../testdata/official_key.pem"), exitUsage, "APIv3 key is missing (it decrypts the platform certificates)")
	})
}

// captureResponse makes a verified call and returns the signature headers
// and body of the response.
func captureResponse(t *testing.T, f *fixture) (http.Header, []byte) {
	t.Helper()
	cfg := f.srv.Config()
	tr, err := wechatpay.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Get(f.srv.URL + "/v3/pay/transactions/id/5")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header, body
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	h, body := captureResponse(t, f)
	dir := t.TempDir()
	certPath := filepath.Join(dir, "cert.pem")
	bodyPath := filepath.Join(dir, "body.json")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificates(f.m.ID)[0].Raw}), 0o644)
	os.WriteFile(bodyPath, body, 0o644)
	base := func(serial, sig string) []string {
		return []string{"verify", "-serial", serial, "-timestamp", h.Get(wire.HeaderTimestamp),
			"-nonce", h.Get(wire.HeaderNonce), "-signature", sig}
	}
	serial, sig := h.Get(wire.HeaderSerial), h.Get(wire.HeaderSignature)

	r := runApp(t, nil, "", append(base(serial, sig), "-cert", certPath, "-d", "@"+bodyPath, "-max-skew", "5m")...)
	wantCode(t, r, exitOK, "valid: the signature verifies with platform certificate "+serial, "\\n\n")
	wantCode(t, runApp(t, nil, string(body), append(base(serial, sig), "-cert", certPath, "-d", "@-")...), exitOK)

	wantCode(t, runApp(t, nil, "", append(base(serial, sig), "-cert", certPath, "-d", string(body)+" ")...), exitVerify, "invalid: signature mismatch")
	wantCode(t, runApp(t, nil, "", append(base("ABCDEF", sig), "-cert", certPath, "-d", string(body))...), exitVerify, "invalid: unknown serial")
	wantCode(t, runApp(t, nil, "", append(base(serial, "WECHATPAY/SIGNTEST/AAAA"), "-cert", certPath, "-d", string(body))...), exitVerify, "invalid: signature probe")
	wantCode(t, runApp(t, nil, "", append(base(serial, sig), "-public-key", certPath)...), exitVerify, "verify it with -cert")

	// Usage errors.
	wantCode(t, runApp(t, nil, "", "verify", "-cert", certPath), exitUsage, "missing -serial, -timestamp, -nonce, -signature")
	wantCode(t, runApp(t, nil, "", base(serial, sig)...), exitUsage, "exactly one of -cert")
	wantCode(t, runApp(t, nil, "", append(base(serial, sig), "-cert", certPath, "-public-key", certPath)...), exitUsage, "exactly one of -cert")
}

func TestVerifyPublicKeyOldCapture(t *testing.T) {
	// An old response signed with a WeChat Pay public key: valid offline,
	// unless -max-skew asks for the clock check.
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	m := srv.Merchant()
	pubPath := filepath.Join(t.TempDir(), "pub_key.pem")
	publicKeyFile(t, pubPath, m)
	const ts, nonce, id = "1554209980", "c5ac7061fccab6bf3e254dcf98995b8c", "PUB_KEY_ID_0114232134912410000000000000000001"
	body := []byte(`{"ok":true}`)
	sig, err := wire.Sign(m.PrivateKey, wire.ResponseMessage(ts, nonce, body))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"verify", "-serial", id, "-timestamp", ts, "-nonce", nonce, "-signature", sig, "-d", string(body)}
	wantCode(t, runApp(t, map[string]string{"WECHATPAY_PUBLIC_KEY": pubPath}, "", args...), exitOK, "WeChat Pay public key "+id)
	wantCode(t, runApp(t, nil, "", append(args, "-public-key", pubPath, "-max-skew", "5m")...), exitVerify, "invalid: clock skew")
	wantCode(t, runApp(t, nil, "", append(args, "-public-key", pubPath, "-public-key-id", "PUB_KEY_ID_2")...), exitVerify, "invalid: unknown serial")
	wantCode(t, runApp(t, nil, "", append(args[:len(args)-2], "-public-key", pubPath)...), exitVerify, "invalid: signature mismatch")
}

// startSandbox runs the sandbox command in-process and returns its base
// URL, directory, and a stop function that returns its result.
func startSandboxCmd(t *testing.T, extra ...string) (string, string, func() result) {
	t.Helper()
	return startSandboxCmdTo(t, &watchBuffer{}, extra...)
}

// startSandboxCmdTo is startSandboxCmd with the sandbox's output written
// to out, which the test may wait on.
func startSandboxCmdTo(t *testing.T, out *watchBuffer, extra ...string) (string, string, func() result) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := filepath.Join(t.TempDir(), "sb")
	type ready struct{ url, dir string }
	readyc := make(chan ready, 1)
	done := make(chan result, 1)
	go func() {
		done <- runAppTo(t, ctx, func(u, d string) { readyc <- ready{u, d} }, nil, "", out, append([]string{"sandbox", "-addr", "127.0.0.1:0", "-dir", dir}, extra...)...)
	}()
	var rd ready
	select {
	case rd = <-readyc:
	case r := <-done:
		cancel()
		t.Fatalf("sandbox ended early: %s", r)
	}
	stopped := false
	stop := func() result {
		cancel()
		stopped = true
		return <-done
	}
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	return rd.url, rd.dir, stop
}

func TestSandboxCommand(t *testing.T) {
	url, dir, stop := startSandboxCmd(t)
	var file map[string]string
	data, err := os.ReadFile(filepath.Join(dir, "merchant.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(file))
	for k := range file {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if got := strings.Join(keys, ","); got != "apiv3_key,base_url,certificate,mchid,private_key,public_key,public_key_id,serial" {
		t.Errorf("merchant.json keys: %s", got)
	}
	if file["base_url"] != url || file["private_key"] != "apiclient_key.pem" || file["public_key"] != "pub_key.pem" ||
		!strings.HasPrefix(file["public_key_id"], "PUB_KEY_ID_") || len(file["apiv3_key"]) != 32 {
		t.Errorf("merchant.json: %v", file)
	}
	for name, perm := range map[string]os.FileMode{"merchant.json": 0o600, "apiclient_key.pem": 0o600, "pub_key.pem": 0o644} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != perm {
			t.Errorf("%s has mode %v, want %v", name, st.Mode().Perm(), perm)
		}
	}
	if _, err := wechatpay.LoadPrivateKeyFile(filepath.Join(dir, "apiclient_key.pem")); err != nil {
		t.Error(err)
	}

	// Another command uses it through -sandbox-dir: certificate mode...
	order := `{"appid":"wx1","mchid":"` + file["mchid"] + `","description":"d","out_trade_no":"CMD00077","notify_url":"http://127.0.0.1:1/n","amount":{"total":1}}`
	wantCode(t, runApp(t, nil, "", "post", "-sandbox-dir", dir, "/v3/pay/transactions/native", "-d", order), exitOK, `"code_url":"`+url+`/sandbox/cashier?prepay_id=`)
	// ... and public-key mode, with flags overriding nothing else.
	r := runApp(t, nil, "", "get", "-v", "-sandbox-dir", dir, "-public-key-id", file["public_key_id"], "-public-key", filepath.Join(dir, "pub_key.pem"), "/v3/pay/transactions/out-trade-no/CMD00077?mchid="+file["mchid"])
	wantCode(t, r, exitOK, "Wechatpay-Serial "+file["public_key_id"], `"trade_state":"NOTPAY"`)
	wantCode(t, runApp(t, nil, "", "certs", "-sandbox-dir", dir, "-o", t.TempDir()), exitOK, "newest")

	res := stop()
	wantCode(t, res, exitOK, "sandbox listening on "+url, filepath.Join(dir, "merchant.json"), "sandbox stopped")
	if strings.Contains(res.stdout+res.stderr, file["apiv3_key"]) {
		t.Errorf("the sandbox printed its APIv3 key:\n%s", res)
	}

	// The address is now free again; a busy one is an error, not a panic.
	busy := httptest.NewServer(http.NotFoundHandler())
	defer busy.Close()
	r = runApp(t, nil, "", "sandbox", "-addr", strings.TrimPrefix(busy.URL, "http://"), "-dir", t.TempDir())
	wantCode(t, r, exitFailure, "address already in use")
	wantCode(t, runApp(t, nil, "", "sandbox", "-addr", "nonsense"), exitUsage, "-addr")
}

func TestNotify(t *testing.T) {
	_, dir, _ := startSandboxCmd(t)
	type got struct {
		header http.Header
		body   []byte
	}
	gotc := make(chan got, 4)
	status := http.StatusNoContent
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		gotc <- got{r.Header.Clone(), body}
		w.WriteHeader(status)
		if status != http.StatusNoContent {
			io.WriteString(w, `{"code":"FAIL","message":"nope"}`)
		}
	}))
	defer merchant.Close()

	r := runApp(t, nil, "", "notify", "-sandbox-dir", dir, "-url", merchant.URL+"/notify", "-event", "REFUND.SUCCESS", "-d", `{"refund_status":"SUCCESS"}`)
	wantCode(t, r, exitOK, "answered HTTP 204")
	g := <-gotc
	if g.header.Get(wire.HeaderSignature) == "" || g.header.Get(wire.HeaderSerial) == "" {
		t.Errorf("notification not signed: %v", g.header)
	}
	var n struct {
		EventType string `json:"event_type"`
	}
	if err := json.Unmarshal(g.body, &n); err != nil || n.EventType != "REFUND.SUCCESS" {
		t.Errorf("notification %s: %v", g.body, err)
	}

	status = http.StatusInternalServerError
	r = runApp(t, nil, "", "notify", "-sandbox-dir", dir, "-url", merchant.URL+"/notify")
	wantCode(t, r, exitAPIError, "answered HTTP 500", `"code":"FAIL"`, "not accepted")
	<-gotc

	// Nobody listening: the sandbox answers 502 NOTIFY_FAILED.
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	wantCode(t, runApp(t, nil, "", "notify", "-sandbox-dir", dir, "-url", closed.URL), exitAPIError, "HTTP 502 NOTIFY_FAILED")

	wantCode(t, runApp(t, nil, "", "notify", "-sandbox-dir", dir, "-url", "not a url"), exitUsage, "-url must be")
	wantCode(t, runApp(t, nil, "", "notify", "-sandbox-dir", dir, "-url", merchant.URL, "-d", "[1]"), exitUsage, "JSON object")
}

func TestCertsV2(t *testing.T) {
	dir := t.TempDir()
	r := runApp(t, nil, "", "certs", "-sandbox", "-v2", "-o", dir)
	wantCode(t, r, exitOK, "newest", "wechatpay_")
	files, _ := filepath.Glob(filepath.Join(dir, "wechatpay_*.pem"))
	if len(files) != 1 {
		t.Errorf("certs -v2 wrote %v; want one certificate file", files)
	}
	wantCode(t, runApp(t, nil, "", "certs", "-sandbox", "-v2", "-apiv2-key", "short", "-o", dir), exitUsage, "APIv2 key", "WECHATPAY_APIV2_KEY")
	// A wrong APIv2 key of the right length is refused by the sandbox.
	r = runApp(t, nil, "", "certs", "-sandbox", "-v2", "-apiv2-key", strings.Repeat("k", 32), "-o", dir)
	if r.code == exitOK {
		t.Errorf("certs -v2 with a wrong APIv2 key succeeded:\n%s", r)
	}
}
