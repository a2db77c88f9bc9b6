package profitsharing_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/profitsharing"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// With a wrong merchant certificate serial, a call with an encrypted
// field fails before anything is sent: the key to encrypt with needs the
// certificate download, which WeChat Pay refuses with SIGN_ERROR. The
// error says that first and is not an unknown outcome: nothing was sent.
func TestRefusedSignatureBeforeSending(t *testing.T) {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	var reached atomic.Int32
	srv.Handle("POST /v3/profitsharing/receivers/add", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.Write([]byte(`{}`))
	}))
	cfg := srv.Config()
	cfg.CertificateSerial = strings.Repeat("1", 40)
	tr, err := wechatpay.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &profitsharing.Client{HTTP: &http.Client{Transport: tr}, MerchantID: cfg.MerchantID, AppID: "wxd678efh567hg6787"}
	_, err = c.AddReceiver(context.Background(), profitsharing.Receiver{Type: "MERCHANT_ID", Account: "1900000109", Name: "张三", RelationType: "STORE"})
	if err == nil {
		t.Fatal("AddReceiver succeeded with a wrong serial")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "wechatpay: WeChat Pay refused this merchant's signature (SIGN_ERROR") || strings.Count(msg, "wechatpay:") != 1 {
		t.Errorf("error does not lead with the cause, once: %s", msg)
	}
	var unknown *wechatpay.OutcomeUnknownError
	if errors.As(err, &unknown) || strings.Contains(msg, "outcome") {
		t.Errorf("nothing was sent, yet: %s", msg)
	}
	if strings.Contains(msg, "张三") {
		t.Errorf("the error shows the plaintext name: %s", msg)
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("the sandbox received %d receivers/add requests; want none", n)
	}
}
