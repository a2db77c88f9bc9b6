package complaints_test

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/complaints"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/payments"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

type fixture struct {
	srv    *wechatpaytest.Server
	c      *complaints.Client
	pay    *payments.Client
	store  *wechatpay.Store
	mchid  string
	notify chan complaints.Notice
	url    string // the merchant's callback URL
}

// newFixture starts the simulator, a merchant client and a callback
// server that routes complaint notices with middleware.On.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := wechatpaytest.NewServer(wechatpaytest.WithCallbackSchedule(5*time.Second, 10*time.Millisecond, 10*time.Millisecond))
	t.Cleanup(srv.Close)
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg := srv.Config()
	cfg.Store = store
	tr, err := wechatpay.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: tr}
	f := &fixture{srv: srv, store: store, mchid: cfg.MerchantID, notify: make(chan complaints.Notice, 16),
		c:   &complaints.Client{HTTP: hc, BaseURL: srv.URL},
		pay: &payments.Client{HTTP: hc, BaseURL: srv.URL, MerchantID: cfg.MerchantID, AppID: "wxd678efh567hg6787"},
	}
	var rt middleware.Router
	record := func(ctx context.Context, n *middleware.Notification, p *complaints.Notice) error {
		f.notify <- *p
		return nil
	}
	middleware.On(&rt, complaints.EventCreate, record)
	middleware.On(&rt, complaints.EventStateChange, record)
	merchant := httptest.NewServer(middleware.Notifications(middleware.Config{Keys: store, MerchantID: cfg.MerchantID, APIv3Key: cfg.APIv3Key})(&rt))
	t.Cleanup(merchant.Close)
	f.url = merchant.URL + "/complaints"
	return f
}

// paidOrder places and pays an order.
func (f *fixture) paidOrder(t *testing.T, no string) {
	t.Helper()
	_, err := f.pay.PrepayNative(context.Background(), payments.PrepayRequest{
		Description: "tea", OutTradeNo: no, NotifyURL: "https://merchant.example/notify", Amount: payments.OrderAmount{Total: 1200},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Pay(f.mchid, no, wechatpaytest.PaySuccess); err != nil {
		t.Fatal(err)
	}
}

// complaintImage files a complaint with an image and returns the image's
// URL as the detail query gives it.
func (f *fixture) complaintImage(t *testing.T, no string, data []byte, contentType string) string {
	t.Helper()
	f.paidOrder(t, no)
	id, err := f.srv.FileComplaint(no, wechatpaytest.ComplaintImage(data, contentType))
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.c.Get(context.Background(), id)
	if err != nil || len(c.ComplaintMediaList) != 1 || len(c.ComplaintMediaList[0].MediaURL) != 1 || c.ComplaintMediaList[0].MediaType != "USER_COMPLAINT_IMAGE" {
		t.Fatalf("complaint with an image: %+v, %v", c, err)
	}
	return c.ComplaintMediaList[0].MediaURL[0]
}

func (f *fixture) wantNotice(t *testing.T, id, action string) {
	t.Helper()
	select {
	case n := <-f.notify:
		if n.ComplaintID != id || n.ActionType != action {
			t.Fatalf("notice = %+v; want %s %s", n, id, action)
		}
	case <-time.After(time.Minute): // a bound on a hang, not a timing budget
		t.Fatalf("no %s notice for %s", action, id)
	}
}

func today() string { return time.Now().In(time.FixedZone("CST", 8*3600)).Format(time.DateOnly) }

func TestComplaintLifecycle(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.c.NotificationURL(ctx); err == nil {
		t.Fatal("NotificationURL before any was set: no error")
	}
	nu, err := f.c.CreateNotificationURL(ctx, f.url)
	if err != nil || nu.URL != f.url || nu.MchID != f.mchid {
		t.Fatalf("CreateNotificationURL = %+v, %v", nu, err)
	}
	f.paidOrder(t, "CMP100001")
	id, err := f.srv.FileComplaint("CMP100001", wechatpaytest.ComplaintPhone("13912345678"), wechatpaytest.ComplaintRefund(1200))
	if err != nil {
		t.Fatal(err)
	}
	f.wantNotice(t, id, complaints.ActionCreateComplaint)

	// Detail: the phone stays encrypted unless asked for.
	got, err := f.c.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got.ComplaintState != complaints.StatePending || got.ComplaintedMchID != f.mchid ||
		len(got.ComplaintOrderInfo) != 1 || got.ComplaintOrderInfo[0].OutTradeNo != "CMP100001" || got.ApplyRefundAmount != 1200 {
		t.Fatalf("Get = %+v", got)
	}
	if got.PayerPhone == "" || got.PayerPhone == "13912345678" {
		t.Fatalf("Get: payer_phone %q; want ciphertext", got.PayerPhone)
	}
	withPhone, err := f.c.GetWithPhone(ctx, id)
	if err != nil || withPhone.PayerPhone != "13912345678" {
		t.Fatalf("GetWithPhone: phone %q, %v; want 13912345678", withPhone.PayerPhone, err)
	}
	for _, s := range []string{fmt.Sprint(withPhone), fmt.Sprintf("%v %+v %#v", *withPhone, *withPhone, *withPhone)} {
		if strings.Contains(s, "13912345678") {
			t.Fatalf("a Complaint prints the phone: %s", s)
		}
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("c", "complaint", *withPhone)
	if strings.Contains(logged.String(), "13912345678") || !strings.Contains(logged.String(), id) {
		t.Fatalf("slog: %s", logged.String())
	}

	// List, with and without the phone.
	page, err := f.c.List(ctx, complaints.ListRequest{BeginDate: today(), EndDate: today(), Limit: 10, WithPhone: true})
	if err != nil || page.TotalCount != 1 || len(page.Data) != 1 || page.Data[0].PayerPhone != "13912345678" {
		t.Fatalf("List = %+v, %v", page, err)
	}
	if _, err := f.c.List(ctx, complaints.ListRequest{BeginDate: "2025-01-01", EndDate: "2025-03-01"}); err == nil {
		t.Fatal("List over 59 days: no error")
	}

	// Respond with an uploaded image: PENDING → PROCESSING.
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 100)...)
	mediaID, err := f.c.UploadImage(ctx, "proof.png", png)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.c.Respond(ctx, id, complaints.Response{ComplaintedMchID: f.mchid, ResponseContent: "已联系您处理", ResponseImages: []string{mediaID}}); err != nil {
		t.Fatal(err)
	}
	f.wantNotice(t, id, complaints.ActionMerchantResponse)
	if got, _ := f.c.Get(ctx, id); got.ComplaintState != complaints.StateProcessing {
		t.Fatalf("after Respond: state %s; want PROCESSING", got.ComplaintState)
	}
	day := 0
	if err := f.c.UpdateRefundProgress(ctx, id, complaints.RefundProgress{Action: complaints.RefundApprove, LaunchRefundDay: &day}); err != nil {
		t.Fatal(err)
	}
	f.wantNotice(t, id, complaints.ActionMerchantApproveRefund)

	// History: filing, response (with its image), approval.
	h, err := f.c.History(ctx, id, 50, 0)
	if err != nil || h.TotalCount != 3 || len(h.Data) != 3 || h.Data[1].OperateType != "MERCHANT_RESPONSE" ||
		len(h.Data[1].ComplaintMediaList) != 1 || len(h.Data[1].ComplaintMediaList[0].MediaURL) != 1 {
		t.Fatalf("History = %+v, %v", h, err)
	}
	img, err := f.c.DownloadImage(ctx, h.Data[1].ComplaintMediaList[0].MediaURL[0])
	if err != nil || !bytes.Equal(img, png) {
		t.Fatalf("DownloadImage of the uploaded image: %d bytes, %v", len(img), err)
	}

	// Complete: PROCESSED, and nothing more may happen.
	if err := f.c.Complete(ctx, id, f.mchid); err != nil {
		t.Fatal(err)
	}
	f.wantNotice(t, id, complaints.ActionMerchantConfirmComplete)
	if got, _ := f.c.Get(ctx, id); got.ComplaintState != complaints.StateProcessed {
		t.Fatalf("after Complete: state %s; want PROCESSED", got.ComplaintState)
	}
	var apiErr *wechatpay.APIError
	if err := f.c.Complete(ctx, id, f.mchid); !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !apiErr.Verified {
		t.Fatalf("second Complete: %v; want a verified 400", err)
	}

	// The notification URL calls.
	if nu, err := f.c.UpdateNotificationURL(ctx, "https://merchant.example/c2"); err != nil || nu.URL != "https://merchant.example/c2" {
		t.Fatalf("UpdateNotificationURL = %+v, %v", nu, err)
	}
	if nu, err := f.c.NotificationURL(ctx); err != nil || nu.URL != "https://merchant.example/c2" {
		t.Fatalf("NotificationURL = %+v, %v", nu, err)
	}
	if err := f.c.DeleteNotificationURL(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.NotificationURL(ctx); !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Fatalf("NotificationURL after delete: %v; want 404", err)
	}
}

func TestRejectRefund(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.paidOrder(t, "CMP100002")
	id, err := f.srv.FileComplaint("CMP100002", wechatpaytest.ComplaintRefund(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.c.UpdateRefundProgress(ctx, id, complaints.RefundProgress{Action: "MAYBE"}); err == nil {
		t.Fatal("action MAYBE: no error")
	}
	if err := f.c.UpdateRefundProgress(ctx, id, complaints.RefundProgress{Action: complaints.RefundReject, RejectReason: "已发货"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.c.Get(ctx, id); got.ComplaintState != complaints.StateProcessed {
		t.Fatalf("after REJECT: state %s; want PROCESSED", got.ComplaintState)
	}
	// Unknown and unpaid orders cannot be complained about.
	if _, err := f.srv.FileComplaint("NOSUCHORDER"); err == nil {
		t.Fatal("FileComplaint for an unknown order: no error")
	}
	if _, err := f.c.Get(ctx, "../x"); err == nil {
		t.Fatal("Get(../x): no error")
	}
}

func TestSignOnlyKeyCannotDecryptPhone(t *testing.T) {
	f := newFixture(t)
	f.paidOrder(t, "CMP100003")
	id, err := f.srv.FileComplaint("CMP100003")
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.srv.Config()
	cfg.PrivateKey = signOnly{cfg.PrivateKey.(interface {
		Public() crypto.PublicKey
		Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error)
	})}
	tr, err := wechatpay.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &complaints.Client{HTTP: &http.Client{Transport: tr}, BaseURL: f.srv.URL}
	if _, err := c.Get(context.Background(), id); err != nil {
		t.Fatalf("Get with a sign-only key: %v", err)
	}
	_, err = c.GetWithPhone(context.Background(), id)
	if err == nil || !strings.Contains(err.Error(), "cannot decrypt: it signs only") {
		t.Fatalf("GetWithPhone with a sign-only key: %v; want an error saying it cannot decrypt", err)
	}
}

type signOnly struct {
	k interface {
		Public() crypto.PublicKey
		Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error)
	}
}

func (s signOnly) Public() crypto.PublicKey { return s.k.Public() }
func (s signOnly) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	return s.k.Sign(r, d, o)
}

func TestDownloadImageLimits(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := *f.c
	c.MaxImageSize = 1000
	big := f.complaintImage(t, "CMPIMG0001", bytes.Repeat([]byte{1}, 1001), "image/jpeg")
	if b, err := c.DownloadImage(ctx, big); !errors.Is(err, complaints.ErrImageTooLarge) || b != nil {
		t.Fatalf("an image of 1001 bytes with a cap of 1000: %d bytes, %v; want ErrImageTooLarge and nothing", len(b), err)
	}
	exact := f.complaintImage(t, "CMPIMG0002", bytes.Repeat([]byte{2}, 1000), "image/jpeg")
	if b, err := c.DownloadImage(ctx, exact); err != nil || len(b) != 1000 {
		t.Fatalf("an image at the cap: %d bytes, %v", len(b), err)
	}
	// A Content-Type that claims JSON changes nothing: the bytes come back.
	jsonish := []byte(`{"code":"SYSTEM_ERROR","message":"x"}`)
	u := f.complaintImage(t, "CMPIMG0003", jsonish, "application/json")
	if b, err := c.DownloadImage(ctx, u); err != nil || !bytes.Equal(b, jsonish) {
		t.Fatalf("image served as application/json: %q, %v; want the bytes", b, err)
	}
	// Only the image path is fetched unverified.
	for _, bad := range []string{
		f.srv.URL + "/v3/merchant-service/complaints-v2",
		f.srv.URL + "/v3/merchant-service/images/",
		f.srv.URL + "/v3/merchant-service/images/a/b",
		f.srv.URL + "/v3/merchant-service/images/x?y=1",
		"/v3/merchant-service/images/x",
	} {
		if _, err := c.DownloadImage(ctx, bad); err == nil {
			t.Errorf("DownloadImage(%q): no error", bad)
		}
	}
	// Another host: the Transport signs for WeChat Pay's hosts only.
	if _, err := c.DownloadImage(ctx, "https://evil.example/v3/merchant-service/images/abc"); !errors.Is(err, wechatpay.ErrHostNotAllowed) {
		t.Fatalf("another host: %v; want ErrHostNotAllowed", err)
	}
	// An upload over 2 MB is refused before sending.
	if _, err := c.UploadImage(ctx, "big.png", make([]byte, 2<<20+1)); !errors.Is(err, complaints.ErrImageTooLarge) {
		t.Fatalf("upload of 2 MB + 1: %v", err)
	}
	if _, err := c.UploadImage(ctx, "x.gif", []byte("GIF89a")); err == nil {
		t.Fatal("upload of a .gif: no error")
	}
}

// TestImageNeedsTheMark plays a caller that fetches a complaint image
// through the Transport without the mark: the unsigned answer is refused,
// with a hint, never passed on.
func TestImageNeedsTheMark(t *testing.T) {
	f := newFixture(t)
	u := f.complaintImage(t, "CMPIMG0004", []byte("\xff\xd8\xffjpeg"), "image/jpeg")
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.c.HTTP.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("an unmarked image download was passed on")
	}
	var ve *wechatpay.VerifyError
	if !errors.As(err, &ve) || !errors.Is(err, wechatpay.ErrMissingSignature) || !strings.Contains(err.Error(), "WithoutResponseVerification") {
		t.Fatalf("unmarked download: %v; want a *VerifyError for the missing signature naming the mark", err)
	}
}

// TestConcurrentComplaints files and answers complaints from many
// goroutines (run with -race).
func TestConcurrentComplaints(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const n = 8
	ids := make([]string, n)
	for i := range n {
		no := fmt.Sprintf("CMPC%06d", i)
		f.paidOrder(t, no)
		id, err := f.srv.FileComplaint(no)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.c.Respond(ctx, id, complaints.Response{ComplaintedMchID: f.mchid, ResponseContent: "ok"}); err != nil {
				errs <- err
				return
			}
			if _, err := f.c.GetWithPhone(ctx, id); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	page, err := f.c.List(ctx, complaints.ListRequest{BeginDate: today(), EndDate: today(), Limit: 50})
	if err != nil || page.TotalCount != n {
		t.Fatalf("List: %+v, %v; want %d", page, err, n)
	}
	for _, c := range page.Data {
		if c.ComplaintState != complaints.StateProcessing {
			t.Errorf("%s: %s; want PROCESSING", c.ComplaintID, c.ComplaintState)
		}
	}
}

// TestRespondOutcomeUnknown plays an answer spoiled on the way back: the
// response reached WeChat Pay, the client cannot know, and says to read
// the complaint before sending it again.
func TestRespondOutcomeUnknown(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.paidOrder(t, "CMP100004")
	id, err := f.srv.FileComplaint("CMP100004")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Get(ctx, id); err != nil { // certificates cached
		t.Fatal(err)
	}
	f.srv.SetFault(wechatpaytest.FaultTamperTimestamp)
	err = f.c.Respond(ctx, id, complaints.Response{ComplaintedMchID: f.mchid, ResponseContent: "ok"})
	f.srv.SetFault(wechatpaytest.FaultNone)
	var unknown *wechatpay.OutcomeUnknownError
	if !errors.As(err, &unknown) || unknown.NumberName != "complaint_id" || unknown.Number != id {
		t.Fatalf("Respond with a spoiled answer: %v; want an OutcomeUnknownError naming complaint_id %s", err, id)
	}
	if got, _ := f.c.Get(ctx, id); got.ComplaintState != complaints.StateProcessing {
		t.Fatalf("state %s; the response did reach the simulator", got.ComplaintState)
	}
}
