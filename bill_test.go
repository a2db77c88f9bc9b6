package wechatpay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// requestBill asks the sandbox for a trade bill through client.
func requestBill(t *testing.T, client *http.Client, srv *wechatpaytest.Server) wechatpay.BillFile {
	t.Helper()
	resp, err := client.Get(srv.URL + "/v3/bill/tradebill?bill_date=2024-01-01&bill_type=ALL")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := wechatpay.CheckResponse(resp); err != nil {
		t.Fatal(err)
	}
	var b wechatpay.BillFile
	if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
		t.Fatal(err)
	}
	if b.HashType != "SHA1" || len(b.HashValue) != 40 || !strings.HasPrefix(b.DownloadURL, srv.URL+"/v3/billdownload/file?") {
		t.Fatalf("bill answer %+v", b)
	}
	return b
}

func TestDownloadBill(t *testing.T) {
	srv := newSandbox(t)
	client, _ := newClient(t, srv.Config(), wechatpay.StoreOptions{})
	ctx := context.Background()
	bill := requestBill(t, client, srv)

	var buf bytes.Buffer
	if err := bill.Download(ctx, client, &buf); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 1<<20 || !strings.HasPrefix(buf.String(), "交易时间,") || !strings.Contains(buf.String(), "`2024-01-01 00:00:01,") {
		t.Errorf("bill is %d bytes starting %q", buf.Len(), buf.String()[:min(buf.Len(), 60)])
	}

	t.Run("one flipped byte", func(t *testing.T) {
		srv.FlipBillByte(777_777)
		defer srv.FlipBillByte(-1)
		var got bytes.Buffer
		err := bill.Download(ctx, client, &got)
		if !errors.Is(err, wechatpay.ErrBillHash) || !strings.Contains(err.Error(), bill.HashValue) {
			t.Errorf("got %v; want ErrBillHash naming the announced hash", err)
		}
		if got.Len() != buf.Len() || bytes.Equal(got.Bytes(), buf.Bytes()) {
			t.Error("the sandbox did not spoil exactly the content")
		}
	})
	t.Run("bad hash arguments", func(t *testing.T) {
		for _, tc := range [][2]string{{"MD5", bill.HashValue}, {"SHA1", "zz"}, {"SHA1", bill.HashValue[:38]}, {"SHA256", bill.HashValue}} {
			if err := wechatpay.DownloadBill(ctx, client, bill.DownloadURL, tc[0], tc[1], io.Discard); err == nil {
				t.Errorf("DownloadBill(%q, %q) succeeded", tc[0], tc[1])
			}
		}
		if err := wechatpay.DownloadBill(ctx, client, bill.DownloadURL, "sha1", strings.ToUpper(bill.HashValue), io.Discard); err != nil {
			t.Errorf("upper-case hash, lower-case type: %v", err)
		}
	})
	t.Run("download error is an APIError", func(t *testing.T) {
		err := wechatpay.DownloadBill(ctx, client, srv.URL+"/v3/billdownload/file?token=bogus", "SHA1", bill.HashValue, io.Discard)
		var apiErr *wechatpay.APIError
		if !errors.As(err, &apiErr) || apiErr.Code != "PARAM_ERROR" {
			t.Errorf("got %v; want PARAM_ERROR", err)
		}
	})
	t.Run("other paths stay verified", func(t *testing.T) {
		srv.SetFault(wechatpaytest.FaultNoHeaders)
		defer srv.SetFault(wechatpaytest.FaultNone)
		for _, p := range []string{"/v3/bill/tradebill?bill_date=2024-01-01", "/v3/echo/billdownload/file"} {
			resp, err := client.Get(srv.URL + p)
			if resp != nil || !errors.Is(err, wechatpay.ErrMissingSignature) {
				t.Errorf("unsigned %s: %v; want ErrMissingSignature", p, err)
			}
		}
	})
	t.Run("escape hatch", func(t *testing.T) {
		srv.SetFault(wechatpaytest.FaultNoHeaders)
		defer srv.SetFault(wechatpaytest.FaultNone)
		req, _ := http.NewRequestWithContext(wechatpay.WithoutResponseVerification(ctx), http.MethodGet, srv.URL+"/v3/echo/unsigned", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if wechatpay.IsVerified(resp) {
			t.Error("IsVerified = true for an unverified response")
		}
	})
}

// TestDownloadBillStreams downloads a 256 MiB bill through the Transport
// and checks that the heap never grows by 16 MiB: the file is streamed,
// not buffered, on both sides of the loopback connection.
func TestDownloadBillStreams(t *testing.T) {
	const size = 256 << 20
	srv := newSandbox(t)
	srv.SetBillSize(size)
	client, _ := newClient(t, srv.Config(), wechatpay.StoreOptions{})
	bill := requestBill(t, client, srv) // computes the hash: one pass over the file

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, baseTotal := ms.HeapAlloc, ms.TotalAlloc
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		var s runtime.MemStats
		for {
			runtime.ReadMemStats(&s)
			peak = max(peak, s.HeapAlloc)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	var n countWriter
	err := bill.Download(context.Background(), client, &n)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&ms)
	if n != size {
		t.Errorf("downloaded %d bytes; want %d", n, size)
	}
	growth := int64(peak) - int64(base)
	t.Logf("peak heap growth %d KiB, allocated %d KiB in all", growth>>10, (ms.TotalAlloc-baseTotal)>>10)
	if growth >= 16<<20 {
		t.Errorf("peak heap growth %d MiB; want under 16 MiB", growth>>20)
	}
	if total := ms.TotalAlloc - baseTotal; total >= size/4 {
		t.Errorf("allocated %d MiB while downloading %d MiB: the file was buffered", total>>20, size>>20)
	}
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }
