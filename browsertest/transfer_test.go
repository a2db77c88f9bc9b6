package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/transfers"
)

// TestTransferConfirmationInChromium starts "wechatpay sandbox", creates a
// transfer bill with transfers.Client (the user's name encrypted on the
// way), opens the sandbox's confirmation page for its package_info in
// headless Chromium as WeChat would for wx.requestMerchantTransfer,
// clicks "Confirm receipt", and sees the MCHTRANSFER.BILL.FINISHED
// callback reach a Router behind middleware.Notifications, and the query
// say SUCCESS. It saves a screenshot into $BROWSERTEST_ARTIFACTS, or the
// test's temporary directory.
func TestTransferConfirmationInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("this test needs Chromium at %s (Debian: apt-get install chromium): %v", chromiumPath, err)
	}
	bin := buildWechatpay(t, t.TempDir())
	dir := startSandbox(t, bin)

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
	finished := make(chan *transfers.Bill, 4)
	var rt middleware.Router
	middleware.On(&rt, transfers.EventBillFinished, func(ctx context.Context, n *middleware.Notification, b *transfers.Bill) error {
		finished <- b
		return nil
	})
	merchant := httptest.NewServer(middleware.Notifications(middleware.Config{Keys: store, MerchantID: mj["mchid"], APIv3Key: mj["apiv3_key"]})(&rt))
	defer merchant.Close()

	c := &transfers.Client{HTTP: &http.Client{Transport: tr}, BaseURL: mj["base_url"], MerchantID: mj["mchid"], AppID: "wxd678efh567hg6787"}
	const outBillNo = "BROWSERTRANSFER01"
	bill, err := c.Create(context.Background(), transfers.BillRequest{
		OutBillNo: outBillNo, TransferSceneID: "1000", OpenID: "o-MYE42l80oelYMDE34nYD456Xoy",
		UserName: "浏览器测试", TransferAmount: 2100_00, TransferRemark: "browser test reward",
		NotifyURL: merchant.URL + "/notify",
	})
	if err != nil {
		t.Fatal(err)
	}
	params, err := c.ConfirmParams(bill)
	if err != nil {
		t.Fatal(err)
	}
	page := strings.TrimRight(mj["base_url"], "/") + "/sandbox/cashier/transfer?package=" + url.QueryEscape(params.Package)
	t.Logf("confirmation page %s", page)

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
		chromedp.WindowSize(480, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	// The first call starts the browser and must not carry a timeout.
	if err := chromedp.Do(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatalf("open the confirmation page: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second) // a hang guard, not a budget
	defer cancel()
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	if amount, billNo, state := text("#amount"), text("#bill"), text("#state"); amount != "¥2100.00" || billNo != outBillNo || state != "WAIT_USER_CONFIRM" {
		t.Fatalf("page shows amount %q, bill %q, state %q", amount, billNo, state)
	}
	if strings.Contains(text("body"), "浏览器测试") {
		t.Error("the page shows the user's name")
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitNotPresent(chromedp.CSS("#confirm"))); err != nil {
		t.Fatalf("click Confirm: %v", err)
	}
	if state := text("#state"); state != "SUCCESS" {
		t.Fatalf("after confirming the page shows %q", state)
	}

	select {
	case b := <-finished:
		if b.OutBillNo != outBillNo || b.State != transfers.StateSuccess || b.TransferAmount != 2100_00 {
			t.Fatalf("callback %v", b)
		}
	case <-ctx.Done():
		t.Fatal("no MCHTRANSFER.BILL.FINISHED reached the merchant")
	}
	q, err := c.QueryByOutBillNo(context.Background(), outBillNo)
	if err != nil || q.State != transfers.StateSuccess || q.UserName != "浏览器测试" {
		t.Fatalf("query = %v (name decrypted: %v), %v", q, q != nil && q.UserName == "浏览器测试", err)
	}

	// The page refreshes itself until the delivery is recorded.
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#deliveries"))); err != nil {
		t.Fatalf("delivery log on the page: %v", err)
	}
	if d := text("#deliveries"); !strings.Contains(d, "MCHTRANSFER.BILL.FINISHED") || !strings.Contains(d, "204") {
		t.Errorf("delivery log: %q", d)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	out := os.Getenv("BROWSERTEST_ARTIFACTS")
	if out == "" {
		out = t.TempDir()
	}
	path := filepath.Join(out, "transfer-confirm.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Errorf("screenshot is not a PNG")
	}
	t.Logf("screenshot of the confirmation page: %s (%d bytes)", path, len(png))
}
