package payments_test

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/payments"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

func billText(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "`2026-12-01 10:00:%02d,`4200000%09d,`交易,`收入,`%d.%02d\r\n", i%60, i, i, i%100)
	}
	return b.Bytes()
}

func subBill(t *testing.T, c *payments.Client, gz bool) *payments.EncryptedBill {
	t.Helper()
	b, err := c.SubMerchantFundFlowBill(context.Background(), payments.SubMerchantFundFlowBillRequest{
		SubMchID: "1900000109", BillDate: "2026-12-01", AccountType: "BASIC", Gzip: gz,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncryptedBillOnePart(t *testing.T) {
	srv, c := simClient(t)
	text := billText(5000)
	srv.SetEncryptedBills(wechatpaytest.EncryptedBills{Content: text})
	b := subBill(t, c, false)
	if b.DownloadBillCount != 1 || len(b.DownloadBillList) != 1 || len(b.DownloadBillList[0].Nonce) != 16 {
		t.Fatalf("bill = %+v; want one part with a 16-character nonce", b)
	}
	var out bytes.Buffer
	if err := b.Download(context.Background(), c.HTTP, &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), text) {
		t.Fatalf("plaintext: %d bytes, want the %d of the bill", out.Len(), len(text))
	}
	// The generated bill of the platform endpoint decrypts too.
	srv.SetEncryptedBills(wechatpaytest.EncryptedBills{})
	eb, err := c.EcommerceFundFlowBill(context.Background(), payments.EcommerceFundFlowBillRequest{BillDate: "2026-12-01", Gzip: true})
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := eb.Download(context.Background(), c.HTTP, &out); err != nil || !strings.HasPrefix(out.String(), "记账时间,") {
		t.Fatalf("platform bill: %q, %v", out.String()[:min(40, out.Len())], err)
	}
}

// TestEncryptedBillMultiPart plays a gzip bill split into parts that cut
// the gzip stream anywhere, listed out of order.
func TestEncryptedBillMultiPart(t *testing.T) {
	srv, c := simClient(t)
	text := billText(300000)
	srv.SetEncryptedBills(wechatpaytest.EncryptedBills{Content: text, PartSize: 7001})
	b := subBill(t, c, true)
	if len(b.DownloadBillList) < 3 {
		t.Fatalf("%d parts; want several", len(b.DownloadBillList))
	}
	list := b.DownloadBillList
	list[0], list[len(list)-1] = list[len(list)-1], list[0]
	var out bytes.Buffer
	d := &payments.EncryptedBillDownload{HTTP: c.HTTP, Parallel: 3, TempDir: t.TempDir()}
	if err := d.Run(context.Background(), b, &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), text) {
		t.Fatalf("plaintext of %d parts: %d bytes; want the %d of the bill", len(list), out.Len(), len(text))
	}
	// Raw keeps the gzip stream, which is the parts joined.
	out.Reset()
	d.Raw = true
	b2 := subBill(t, c, true)
	if err := d.Run(context.Background(), b2, &out); err != nil || !bytes.HasPrefix(out.Bytes(), []byte{0x1f, 0x8b}) {
		t.Fatalf("raw: %x…, %v; want gzip bytes", out.Bytes()[:min(4, out.Len())], err)
	}
}

// TestEncryptedBillTampered flips a byte of one part. With the listed
// hash left alone the hash check refuses it; with the hash changed too
// the GCM tag does. Either way nothing at all reaches the writer, not
// even the parts before it.
func TestEncryptedBillTampered(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rehash bool
		want   error
	}{
		{"hash", false, wechatpay.ErrBillHash},
		{"tag", true, payments.ErrBillDecrypt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := simClient(t)
			srv.SetEncryptedBills(wechatpaytest.EncryptedBills{Content: billText(50000), PartSize: 10000, TamperPart: 3, Rehash: tc.rehash})
			b := subBill(t, c, false)
			var out countingWriter
			err := b.Download(context.Background(), c.HTTP, &out)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "part 3") {
				t.Fatalf("Download = %v; want %v naming part 3", err, tc.want)
			}
			if out.n != 0 {
				t.Fatalf("%d bytes reached the writer; want none", out.n)
			}
		})
	}
}

type countingWriter struct{ n int }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

func TestEncryptedBillRefusals(t *testing.T) {
	srv, c := simClient(t)
	srv.SetEncryptedBills(wechatpaytest.EncryptedBills{Content: billText(9000), PartSize: 3000})
	ctx := context.Background()

	// A sign-only key says so.
	b := subBill(t, c, false)
	d := &payments.EncryptedBillDownload{HTTP: c.HTTP, Key: signOnlyKey{srv.Merchant().PrivateKey}}
	if err := d.Run(ctx, b, io.Discard); err == nil || !strings.Contains(err.Error(), "can sign but not decrypt") {
		t.Fatalf("sign-only key: %v", err)
	}
	// Another merchant's key cannot open the parts' keys.
	other := wechatpaytest.NewServer()
	defer other.Close()
	d.Key = other.Merchant().PrivateKey
	if err := d.Run(ctx, b, io.Discard); err == nil || !strings.Contains(err.Error(), "encrypt_key") {
		t.Fatalf("another key: %v", err)
	}
	// URLs older than their life are not fetched.
	stale := subBill(t, c, false)
	stale.Fetched = time.Now().Add(-payments.BillURLLifetime - time.Second)
	before := srv.PathRequests("/v3/bill/downloadurl")
	if err := stale.Download(ctx, c.HTTP, io.Discard); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("stale bill: %v; want an error saying the URLs expired", err)
	}
	if n := srv.PathRequests("/v3/bill/downloadurl") - before; n != 0 {
		t.Fatalf("stale bill: %d downloads; want none", n)
	}
	// Parts numbered wrong, or a count that disagrees.
	bad := subBill(t, c, false)
	bad.DownloadBillList[1].BillSequence = 7
	if err := bad.Download(ctx, c.HTTP, io.Discard); err == nil || !strings.Contains(err.Error(), "numbered") {
		t.Fatalf("misnumbered parts: %v", err)
	}
	bad = subBill(t, c, false)
	bad.DownloadBillCount++
	if err := bad.Download(ctx, c.HTTP, io.Discard); err == nil {
		t.Fatal("a count that disagrees with the list: no error")
	}
	// A part over the size bound.
	big := subBill(t, c, false)
	d = &payments.EncryptedBillDownload{HTTP: c.HTTP, MaxPartSize: 100}
	if err := d.Run(ctx, big, io.Discard); err == nil || !strings.Contains(err.Error(), "allowed") {
		t.Fatalf("part over MaxPartSize: %v", err)
	}
	// A download URL is fetched only with the mark: without it, the
	// unsigned answer is refused.
	req, _ := http.NewRequest(http.MethodGet, big.DownloadBillList[0].DownloadURL, nil)
	if resp, err := c.HTTP.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("an unmarked bill download was passed on")
	} else if !errors.Is(err, wechatpay.ErrMissingSignature) {
		t.Fatalf("unmarked bill download: %v; want ErrMissingSignature", err)
	}
	// A part WeChat Pay no longer has: its APIError, named by part, one prefix.
	gone := subBill(t, c, false)
	gone.DownloadBillList[0].DownloadURL = srv.URL + "/v3/bill/downloadurl?token=nosuchtoken"
	err := gone.Download(ctx, c.HTTP, io.Discard)
	var apiErr *wechatpay.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || !strings.HasPrefix(err.Error(), "wechatpay/payments: bill part 1: HTTP 404") {
		t.Fatalf("a part that is gone: %v; want its 404 APIError named by part", err)
	}
	if _, err := c.SubMerchantFundFlowBill(ctx, payments.SubMerchantFundFlowBillRequest{BillDate: "2026-12-01", AccountType: "BASIC"}); err == nil {
		t.Fatal("no sub_mchid: no error")
	}
}

type signOnlyKey struct{ k crypto.Signer }

func (s signOnlyKey) Public() crypto.PublicKey { return s.k.Public() }
func (s signOnlyKey) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	return s.k.Sign(r, d, o)
}

// TestEncryptedBillDownloadPrintsNoKey prints a download holding the
// merchant key every way a log might.
func TestEncryptedBillDownloadPrintsNoKey(t *testing.T) {
	srv, c := simClient(t)
	key := srv.Merchant().PrivateKey
	d := payments.EncryptedBillDownload{HTTP: c.HTTP, Key: key}
	secret := key.D.String()[:20]
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("d", "download", d)
	for _, s := range []string{fmt.Sprint(d), fmt.Sprintf("%v %+v %#v %s", d, d, &d, d), logged.String()} {
		if strings.Contains(s, secret) || !strings.Contains(s, "key") && !strings.Contains(s, "Key") {
			t.Fatalf("printed: %s", s)
		}
	}
}
