// Package browsertest drives the sandbox's web cashier with a real,
// headless Chromium. It is a module of its own so that the core module
// keeps its two dependencies; chromedp is its only addition.
package browsertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/middleware"
)

// chromiumPath is Debian's chromium package; .ci/run installs it.
const chromiumPath = "/usr/bin/chromium"

// buildWechatpay builds the command into dir and returns its path.
func buildWechatpay(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "wechatpay")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/wxpaykit/wechatpay/cmd/wechatpay").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startSandbox runs "wechatpay sandbox" with the extra flags and returns
// the directory it wrote merchant.json into. The process is stopped when
// the test ends.
func startSandbox(t *testing.T, bin string, extra ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sandbox")
	cmd := exec.Command(bin, append([]string{"sandbox", "-addr", "127.0.0.1:0", "-dir", dir}, extra...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() {
			for l := range lines {
				t.Log("sandbox: " + l)
			}
			cmd.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("sandbox exited: %s", stderr.String())
			}
			t.Log("sandbox: " + l)
			if strings.HasPrefix(l, "merchant ") {
				return dir
			}
		case <-deadline:
			t.Fatal("sandbox did not start")
		}
	}
}

// TestCashierInChromium starts "wechatpay sandbox", places a Native order
// through wechatpay.Transport, opens its code_url in headless Chromium
// emulating a 375 px wide phone, clicks Pay, sees the payer's result, and
// sees the TRANSACTION.SUCCESS callback reach a merchant server running
// middleware.Notifications (after a first attempt it answers 500, which
// the sandbox retries). The page must lay out at the phone's width (its
// viewport tag) and nothing, the delivery table included, may be wider
// than the screen. It saves a screenshot of the cashier page into
// $BROWSERTEST_ARTIFACTS, or the test's temporary directory, and logs its
// path.
func TestCashierInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("this test needs Chromium at %s (Debian: apt-get install chromium): %v", chromiumPath, err)
	}
	bin := buildWechatpay(t, t.TempDir())
	dir := startSandbox(t, bin, "-retry-scale", "1000") // the first retry after 15 ms

	// The merchant's side, from merchant.json as any client would.
	data, err := os.ReadFile(filepath.Join(dir, "merchant.json"))
	if err != nil {
		t.Fatal(err)
	}
	var mj map[string]string
	if err := json.Unmarshal(data, &mj); err != nil {
		t.Fatal(err)
	}
	key, err := wechatpay.LoadPrivateKeyFile(filepath.Join(dir, mj["private_key"]))
	if err != nil {
		t.Fatal(err)
	}
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	tr, err := wechatpay.NewTransport(wechatpay.Config{MerchantID: mj["mchid"], CertificateSerial: mj["serial"], PrivateKey: key,
		APIv3Key: mj["apiv3_key"], BaseURL: mj["base_url"], Store: store})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: tr}
	got := make(chan *middleware.Notification, 4)
	accept := middleware.Notifications(middleware.Config{Keys: store, MerchantID: mj["mchid"], APIv3Key: mj["apiv3_key"]})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := middleware.NotificationFrom(r.Context())
			got <- n
		}))
	var calls atomic.Int32
	merchant := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, `{"code":"FAIL","message":"busy"}`, http.StatusInternalServerError)
			return
		}
		accept.ServeHTTP(w, r)
	}))
	defer merchant.Close()

	const outTradeNo = "BROWSER20240101"
	order, _ := json.Marshal(map[string]any{
		"appid": "wxd678efh567hg6787", "mchid": mj["mchid"], "description": "Sandbox tea, browser test",
		"out_trade_no": outTradeNo, "notify_url": merchant.URL + "/notify",
		"amount": map[string]any{"total": 1234, "currency": "CNY"},
	})
	resp, err := client.Post(mj["base_url"]+"/v3/pay/transactions/native", "application/json", bytes.NewReader(order))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var placed struct {
		CodeURL string `json:"code_url"`
	}
	if err := json.Unmarshal(body, &placed); err != nil || resp.StatusCode != 200 || !wechatpay.IsVerified(resp) || placed.CodeURL == "" {
		t.Fatalf("order: %s %s (verified %v)", resp.Status, body, wechatpay.IsVerified(resp))
	}
	t.Logf("code_url %s", placed.CodeURL)

	// Debian's Chromium, headless, with a fresh profile and nothing that
	// talks to the Internet.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(375, 812),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	// The first call starts the browser and must not carry a timeout,
	// which would stop the browser with it; later calls are bounded.
	// A phone: 375 CSS px wide, mobile layout (a page without a viewport
	// tag is laid out 980 px wide and shrunk).
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile, chromedp.EmulatePortrait, chromedp.EmulateScale(2)),
		chromedp.Navigate(placed.CodeURL),
	); err != nil {
		t.Fatalf("open the cashier at its code_url: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	eval := func(js string) float64 {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](js))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		return v
	}
	viewport, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector('meta[name="viewport"]') || {content: ""}).content`))
	if err != nil || !strings.Contains(viewport, "width=device-width") {
		t.Errorf("viewport meta tag %q (%v); want width=device-width", viewport, err)
	}
	amount, description, state := text("#amount"), text("#description"), text("#state")
	if amount != "¥12.34" || description != "Sandbox tea, browser test" || state != "NOTPAY" {
		t.Fatalf("cashier shows amount %q, description %q, state %q", amount, description, state)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#pay")),
		chromedp.WaitVisible(chromedp.CSS("#transaction")),
	); err != nil {
		t.Fatalf("click Pay: %v", err)
	}
	if state := text("#state"); state != "SUCCESS" {
		t.Fatalf("after Pay the cashier shows %q", state)
	}
	if result := text("#result"); !strings.Contains(result, "支付成功") || !strings.Contains(result, "Payment successful") {
		t.Errorf("after Pay the payer is told %q; want 支付成功 and Payment successful", result)
	}

	var n *middleware.Notification
	select {
	case n = <-got:
	case <-ctx.Done():
		t.Fatal("no callback reached the merchant server")
	}
	tx, err := n.Transaction()
	if err != nil {
		t.Fatal(err)
	}
	if n.EventType != "TRANSACTION.SUCCESS" || tx.OutTradeNo != outTradeNo || tx.TradeState != "SUCCESS" || tx.Amount.Total != 1234 {
		t.Fatalf("callback %s %+v", n.EventType, tx)
	}

	// The page refreshes itself until the delivery is recorded; then it
	// lists the failed attempt and the merchant's answer to the retry.
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#deliveries"))); err != nil {
		t.Fatalf("delivery log on the cashier: %v", err)
	}
	if deliveries := text("#deliveries"); !strings.Contains(deliveries, "500 Internal Server Error") || !strings.Contains(deliveries, "Next retry") || !strings.Contains(deliveries, "✓") {
		t.Errorf("cashier delivery log: %q", deliveries)
	}
	// Laid out at the phone's width, and nothing wider than it.
	if w := eval(`window.innerWidth`); w != 375 {
		t.Errorf("layout viewport %v px wide; want 375 (the viewport tag)", w)
	}
	if w := eval(`document.documentElement.scrollWidth`); w > 375 {
		t.Errorf("page %v px wide; want at most 375", w)
	}
	if right := eval(`document.getElementById("deliveries").getBoundingClientRect().right`); right > 375 {
		t.Errorf("delivery table ends at %v px; want within 375", right)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	out := os.Getenv("BROWSERTEST_ARTIFACTS")
	if out == "" {
		out = t.TempDir()
	}
	path := filepath.Join(out, "cashier.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("screenshot is not a PNG")
	}
	t.Logf("screenshot of the cashier page: %s (%d bytes)", path, len(png))
}
