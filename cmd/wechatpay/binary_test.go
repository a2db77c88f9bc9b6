package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
)

// binPath is the wechatpay binary built by TestMain, or "" if the build
// failed (the binary tests then fail with buildErr).
var (
	binPath  string
	buildErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wechatpay-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	name := "wechatpay"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), ".").CombinedOutput()
	if err != nil {
		buildErr = fmt.Errorf("go build: %v\n%s", err, out)
	} else {
		binPath = filepath.Join(dir, name)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runBinary runs the built binary with only env (plus PATH and HOME) in
// its environment.
func runBinary(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	// Killed when the test ends; no budget of its own, which load could
	// exceed.
	cmd := exec.CommandContext(t.Context(), binPath, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, stdout.String(), stderr.String()}
}

func TestBinaryExitStatuses(t *testing.T) {
	f := newFixture(t)
	v := loadVectors(t)

	// 0: the official vector, and -h.
	c := v.Cases[0]
	wantCode(t, runBinary(t, nil, c.Body, append(signArgs(v, c.Method, c.URL), "-d", "@-")...), exitOK, `signature="`+c.Signature+`"`)
	wantCode(t, runBinary(t, nil, "", "get", "-h"), exitOK, "Example:")

	// 0: a verified call, credentials from the environment.
	r := runBinary(t, f.env, "", "get", "/v3/pay/transactions/id/3")
	wantCode(t, r, exitOK)
	if r.stdout != `{"amount":{"currency":"CNY","payer_total":100,"total":100},"appid":"wxd678efh567hg6787","mchid":"`+f.m.ID+`","out_trade_no":"T1001","trade_state":"SUCCESS","trade_type":"JSAPI","transaction_id":"3"}`+"\n" {
		t.Errorf("stdout %q", r.stdout)
	}

	// 2: missing credentials, one message.
	r = runBinary(t, nil, "", "certs")
	wantCode(t, r, exitUsage, "missing or bad credentials", "WECHATPAY_MCHID", "WECHATPAY_SERIAL", "WECHATPAY_PRIVATE_KEY", "WECHATPAY_APIV3_KEY")

	// 3: a tampered response.
	f.srv.SetFault(1) // FaultTamperBody
	r = runBinary(t, f.env, "", "get", "/v3/pay/transactions/id/3")
	f.srv.SetFault(0)
	wantCode(t, r, exitVerify, "signature mismatch")
	if r.stdout != "" {
		t.Errorf("stdout %q", r.stdout)
	}

	// 4: WeChat Pay's error.
	wantCode(t, runBinary(t, f.env, "", "get", "/v3/nothing/here"), exitAPIError, "HTTP 404 NOT_FOUND", "Request-ID: ")

	// 1: nothing listens.
	env := map[string]string{}
	for k, val := range f.env {
		env[k] = val
	}
	env["WECHATPAY_BASE_URL"] = "http://127.0.0.1:1"
	wantCode(t, runBinary(t, env, "", "get", "/v3/x"), exitFailure)

	// The APIv3 key never shows, whatever happened.
	for _, out := range []string{r.stdout, r.stderr} {
		if strings.Contains(out, f.m.APIv3Key) {
			t.Errorf("APIv3 key printed")
		}
	}
}

// TestBinarySandboxProcess starts the sandbox as a process on port 0, makes
// signed calls to it from other processes and from a Go client, and stops
// it with SIGTERM.
func TestBinarySandboxProcess(t *testing.T) {
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	if runtime.GOOS == "windows" {
		t.Skip("no SIGTERM on Windows")
	}
	dir := filepath.Join(t.TempDir(), "sandbox")
	cmd := exec.Command(binPath, "sandbox", "-addr", "127.0.0.1:0", "-dir", dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	waited := make(chan struct{})
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		err := cmd.Wait()
		close(waited)
		exited <- err
	}()
	t.Cleanup(func() {
		select {
		case <-waited:
		default:
			cmd.Process.Kill()
		}
	})

	// Waits on the process's own lines; a hang is go test -timeout's.
	var baseURL string
	for baseURL == "" {
		l, ok := <-lines
		if !ok {
			t.Fatalf("sandbox exited early: %s", stderr.String())
		}
		if u, ok := strings.CutPrefix(l, "sandbox listening on "); ok {
			baseURL = u
		}
	}
	if strings.HasSuffix(baseURL, ":0") || !strings.HasPrefix(baseURL, "http://127.0.0.1:") {
		t.Fatalf("base URL %q", baseURL)
	}

	// Another process: the binary itself, through merchant.json.
	r := runBinary(t, nil, "", "get", "-sandbox-dir", dir, "/v3/pay/transactions/id/11?mchid=1", "-v")
	wantCode(t, r, exitAPIError, "PARAM_ERROR", "mchid", "Signature: verified")
	mj := readMerchantJSON(t, dir)
	order := `{"appid":"wx1","mchid":"` + mj["mchid"] + `","description":"tea","out_trade_no":"T9T9T9","notify_url":"http://127.0.0.1:1/notify","amount":{"total":100}}`
	r = runBinary(t, nil, "", "post", "-sandbox-dir", dir, "/v3/pay/transactions/native", "-d", order)
	wantCode(t, r, exitOK, `"code_url":"`+baseURL+`/sandbox/cashier?prepay_id=wx`)
	r = runBinary(t, nil, "", "pay", "-sandbox-dir", dir, "T9T9T9")
	wantCode(t, r, exitOK, `"trade_state":"SUCCESS"`, `"out_trade_no":"T9T9T9"`)
	r = runBinary(t, nil, "", "pay", "-sandbox-dir", dir, "T9T9T9")
	wantCode(t, r, exitAPIError, "ORDERPAID")
	r = runBinary(t, nil, "", "pay", "-sandbox-dir", dir, "-fail", "NOSUCH1")
	wantCode(t, r, exitAPIError, "ORDER_NOT_EXIST")

	// A Go client reading merchant.json as any other program would.
	key, err := wechatpay.LoadPrivateKeyFile(filepath.Join(dir, mj["private_key"]))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := loadPublicKeyFile(filepath.Join(dir, mj["public_key"]))
	if err != nil {
		t.Fatal(err)
	}
	for _, withPub := range []bool{false, true} {
		cfg := wechatpay.Config{MerchantID: mj["mchid"], CertificateSerial: mj["serial"], PrivateKey: key, APIv3Key: mj["apiv3_key"], BaseURL: mj["base_url"]}
		if withPub {
			cfg.PublicKeyID, cfg.PublicKey = mj["public_key_id"], pub
		}
		tr, err := wechatpay.NewTransport(cfg)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Transport: tr}).Get(mj["base_url"] + "/v3/pay/transactions/out-trade-no/T9T9T9?mchid=" + mj["mchid"])
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !wechatpay.IsVerified(resp) || !strings.Contains(string(body), `"out_trade_no":"T9T9T9"`) {
			t.Errorf("public key %v: %s verified=%v %s", withPub, resp.Status, wechatpay.IsVerified(resp), body)
		}
		if got := resp.Header.Get(wire.HeaderSerial); withPub != (got == mj["public_key_id"]) {
			t.Errorf("public key %v: response signed by %s", withPub, got)
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for l := range lines {
		rest = append(rest, l)
	}
	if err := <-exited; err != nil {
		t.Fatalf("sandbox exit after SIGTERM: %v; stderr %s", err, stderr.String())
	}
	if !strings.Contains(strings.Join(rest, "\n"), "sandbox stopped") {
		t.Errorf("no 'sandbox stopped' after SIGTERM: %q", rest)
	}
	// The sandbox printed its attempts to deliver T9T9T9's callback to a
	// closed port.
	if !strings.Contains(strings.Join(rest, "\n"), "callback: ") || !strings.Contains(strings.Join(rest, "\n"), "TRANSACTION.SUCCESS for T9T9T9 → http://127.0.0.1:1/notify attempt 1: no answer") {
		t.Errorf("no callback lines in the sandbox output: %q", rest)
	}
	// The port is closed.
	if resp, err := http.Get(baseURL + "/v3/certificates"); err == nil {
		resp.Body.Close()
		t.Errorf("sandbox still answers after SIGTERM")
	}
}

// readMerchantJSON reads the merchant.json a sandbox wrote into dir.
func readMerchantJSON(t *testing.T, dir string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "merchant.json"))
	if err != nil {
		t.Fatal(err)
	}
	var mj map[string]string
	if err := json.Unmarshal(data, &mj); err != nil {
		t.Fatal(err)
	}
	return mj
}
