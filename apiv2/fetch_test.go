package apiv2_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/apiv2"
	"github.com/wxpaykit/wechatpay/internal/wire"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

func v2Config(srv *wechatpaytest.Server) apiv2.Config {
	m := srv.Merchant()
	return apiv2.Config{MerchantID: m.ID, APIv2Key: m.APIv2Key, APIv3Key: m.APIv3Key, BaseURL: srv.URL, Base: srv.Config().Base, Roots: srv.Roots()}
}

func TestFetchCertificatesV2FeedsStore(t *testing.T) {
	srv := newSandbox(t)
	m := srv.Merchant()
	second := srv.AddCertificate(m.ID)
	certs, err := apiv2.FetchCertificates(context.Background(), v2Config(srv))
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, c := range certs {
		got = append(got, wire.CertSerial(c))
	}
	for _, c := range srv.Certificates(m.ID) {
		want = append(want, wire.CertSerial(c))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) || !slices.Contains(got, second) {
		t.Fatalf("serials = %v; want %v", got, want)
	}
	if n := srv.PathRequests("/risk/getcertficates"); n != 1 {
		t.Errorf("sandbox saw %d getcertficates requests; want 1", n)
	}

	// A store fed this way verifies APIv3 responses without downloading.
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.AddCertificates(m.ID, certs); err != nil {
		t.Fatal(err)
	}
	tr := &wechatpay.Transport{
		Signer:   &wechatpay.Signer{MerchantID: m.ID, CertificateSerial: m.CertificateSerial, Key: m.PrivateKey},
		Verifier: &wechatpay.Verifier{MerchantID: m.ID, Keys: store},
		Base:     srv.Config().Base,
		BaseURL:  srv.URL,
	}
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL + "/v3/echo/v2-fed")
	if err != nil {
		t.Fatalf("response verified with v2-fetched certificates: %v", err)
	}
	resp.Body.Close()
	if n := srv.CertificateDownloads(); n != 1 { // the v2 one only
		t.Errorf("certificate downloads = %d; want 1 (no APIv3 download)", n)
	}
	// The fed certificates also pick the encryption key and request serial.
	serial, _, err := store.EncryptionKey(context.Background(), m.ID)
	if err != nil || !slices.Contains(want, serial) {
		t.Errorf("EncryptionKey = %q, %v; want one of %v", serial, err, want)
	}
	// The store never downloads for this merchant on its own.
	srv.SetFault(wechatpaytest.FaultRandomSerial)
	_, err = (&http.Client{Transport: tr}).Get(srv.URL + "/v3/echo/unknown")
	srv.SetFault(wechatpaytest.FaultNone)
	if !errors.Is(err, wechatpay.ErrUnknownSerial) || srv.PathRequests("/v3/certificates") != 0 {
		t.Errorf("unknown serial: %v, %d downloads; want ErrUnknownSerial and none", err, srv.PathRequests("/v3/certificates"))
	}

	// Certificates that do not chain to the store's roots are refused.
	other := wechatpaytest.NewServer()
	defer other.Close()
	pinned, _ := wechatpay.NewStore(wechatpay.StoreOptions{Roots: other.Roots()})
	if err := pinned.AddCertificates(m.ID, certs); err == nil || !strings.Contains(err.Error(), "chain") {
		t.Errorf("AddCertificates with foreign roots: %v; want a chain error", err)
	}
	if pinned.Len() != 0 {
		t.Errorf("pinned store holds %d certificates after a refusal", pinned.Len())
	}
}

func TestFetchCertificatesV2Errors(t *testing.T) {
	srv := newSandbox(t)
	ctx := context.Background()

	t.Run("wrong APIv3 key", func(t *testing.T) {
		cfg := v2Config(srv)
		cfg.APIv3Key = strings.Repeat("x", 32)
		_, err := apiv2.FetchCertificates(ctx, cfg)
		if !errors.Is(err, wechatpay.ErrDecrypt) || !errors.Is(err, wechatpay.ErrCertificateDownload) {
			t.Errorf("got %v; want ErrDecrypt within ErrCertificateDownload", err)
		}
		if strings.Contains(err.Error(), cfg.APIv3Key) || strings.Contains(err.Error(), cfg.APIv2Key) {
			t.Error("error contains a key")
		}
	})
	t.Run("wrong APIv2 key", func(t *testing.T) {
		cfg := v2Config(srv)
		cfg.APIv2Key = strings.Repeat("y", 32)
		_, err := apiv2.FetchCertificates(ctx, cfg)
		var v2e *apiv2.Error
		if !errors.As(err, &v2e) || v2e.ReturnCode != "FAIL" {
			t.Errorf("got %v; want a return_code FAIL *V2Error", err)
		}
	})
	t.Run("bad sign", func(t *testing.T) {
		srv.SetV2Fault(wechatpaytest.V2BadSign)
		defer srv.SetV2Fault(wechatpaytest.V2OK)
		if _, err := apiv2.FetchCertificates(ctx, v2Config(srv)); !errors.Is(err, wechatpay.ErrBadSignature) {
			t.Errorf("got %v; want ErrBadSignature", err)
		}
	})
	t.Run("missing config", func(t *testing.T) {
		_, err := apiv2.FetchCertificates(ctx, apiv2.Config{BaseURL: "ftp://x"})
		for _, want := range []string{"MerchantID", "APIv2Key", "APIv3 key", "BaseURL"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("error %v does not name %s", err, want)
			}
		}
	})
	t.Run("CERT_NOT_EXIST", func(t *testing.T) {
		pk := wechatpaytest.NewServer(wechatpaytest.PublicKeyOnly())
		defer pk.Close()
		_, err := apiv2.FetchCertificates(ctx, v2Config(pk))
		var v2e *apiv2.Error
		if !errors.As(err, &v2e) || v2e.ErrCode != "CERT_NOT_EXIST" || !strings.Contains(err.Error(), "CERT_NOT_EXIST") {
			t.Errorf("got %v; want a *V2Error with err_code CERT_NOT_EXIST", err)
		}
	})
	t.Run("config redacted", func(t *testing.T) {
		cfg := v2Config(srv)
		for _, verb := range []string{"%v", "%+v", "%#v"} {
			out := fmt.Sprintf(verb, cfg)
			if strings.Contains(out, cfg.APIv2Key) || strings.Contains(out, cfg.APIv3Key) {
				t.Errorf("%s prints a key: %s", verb, out)
			}
		}
	})
}
