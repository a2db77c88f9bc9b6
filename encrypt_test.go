package wechatpay_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

type receiver struct {
	Type         string `json:"type"`
	Account      string `json:"account"`
	Name         string `json:"name,omitempty"`
	RelationType string `json:"relation_type"`
}

// addReceiver posts an encrypted name to the sandbox's
// /v3/profitsharing/receivers/add with Wechatpay-Serial: serial, and
// returns the answer (its name encrypted for the merchant) or the error.
func addReceiver(t *testing.T, client *http.Client, base, encName, serial string) (receiver, error) {
	t.Helper()
	body, _ := json.Marshal(receiver{Type: "PERSONAL_OPENID", Account: "oUser", Name: encName, RelationType: "PARTNER"})
	req, _ := http.NewRequestWithContext(wechatpay.WithSerial(context.Background(), serial), http.MethodPost, base+"/v3/profitsharing/receivers/add", bytes.NewReader(body))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := wechatpay.CheckResponse(resp); err != nil {
		return receiver{}, err
	}
	var r receiver
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r, nil
}

func wantParamError(t *testing.T, err error) {
	t.Helper()
	var apiErr *wechatpay.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || apiErr.Code != "PARAM_ERROR" || !apiErr.Verified {
		t.Errorf("got %v; want a verified 400 PARAM_ERROR", err)
	}
}

func TestEncryptDecryptRoundTrip(t *testing.T) {
	srv := newSandbox(t)
	m := srv.Merchant()
	client, store := newClient(t, srv.Config(), wechatpay.StoreOptions{})
	ctx := context.Background()

	ct, serial, err := encrypt(ctx, store, m.ID, "张三")
	if err != nil {
		t.Fatal(err)
	}
	if serial != srv.SigningSerial(m.ID) {
		t.Errorf("serial = %s; want the platform certificate %s", serial, srv.SigningSerial(m.ID))
	}
	got, err := addReceiver(t, client, srv.URL, ct, serial)
	if err != nil {
		t.Fatal(err)
	}
	name, err := wechatpay.Decrypt(store, m.ID, got.Name)
	if err != nil || name != "张三" {
		t.Errorf("Decrypt(answer) = %q, %v; want 张三", name, err)
	}
	if _, err := wechatpay.Decrypt(store, m.ID, ct); err == nil {
		t.Error("Decrypt with the merchant key opened a field encrypted for WeChat Pay")
	}

	// Several fields, one key.
	a, b, empty := "110101199003077777", "6222020000000000000", ""
	serial2, err := wechatpay.EncryptFields(ctx, store, m.ID, &a, &b, &empty)
	if err != nil || serial2 != serial || empty != "" || a == "110101199003077777" || b == "6222020000000000000" {
		t.Errorf("EncryptFields = %q, %v (fields %q %q %q)", serial2, err, a, b, empty)
	}

	// The Wechatpay-Serial must name the key used.
	other := srv.AddCertificate(m.ID)
	_, err = addReceiver(t, client, srv.URL, ct, other)
	wantParamError(t, err)

	// Too long for RSA-OAEP.
	long := strings.Repeat("x", 215)
	if _, _, err := encrypt(ctx, store, m.ID, long); err == nil || !strings.Contains(err.Error(), "214") {
		t.Errorf("Encrypt of 215 bytes: %v; want an error naming the 214-byte limit", err)
	}
	keep := "unchanged"
	if _, err := wechatpay.EncryptFields(ctx, store, m.ID, &keep, &long); err == nil || keep != "unchanged" {
		t.Errorf("EncryptFields with one field too long: %v, first field %q; want an error and nothing changed", err, keep)
	}
	if _, _, err := encrypt(ctx, store, m.ID, strings.Repeat("x", 214)); err != nil {
		t.Errorf("Encrypt of 214 bytes: %v", err)
	}
	if _, _, err := encrypt(ctx, store, "1999999999", "x"); !errors.Is(err, wechatpay.ErrUnknownMerchant) {
		t.Errorf("unknown merchant: %v", err)
	}
}

func TestEncryptPublicKeyMode(t *testing.T) {
	srv := newSandbox(t, wechatpaytest.WithPublicKey())
	m := srv.Merchant()
	cfg := srv.Config()
	cfg.PublicKeyID, cfg.PublicKey = m.PublicKeyID, m.PublicKey
	client, store := newClient(t, cfg, wechatpay.StoreOptions{})
	ct, serial, err := encrypt(context.Background(), store, m.ID, "李四")
	if err != nil || serial != m.PublicKeyID {
		t.Fatalf("Encrypt = %q, %v; want the public key ID %s", serial, err, m.PublicKeyID)
	}
	got, err := addReceiver(t, client, srv.URL, ct, serial)
	if err != nil {
		t.Fatal(err)
	}
	if name, err := wechatpay.Decrypt(store, m.ID, got.Name); err != nil || name != "李四" {
		t.Errorf("Decrypt = %q, %v", name, err)
	}
	if n := srv.CertificateDownloads(); n != 0 {
		t.Errorf("public-key mode downloaded certificates %d times", n)
	}
	// Encrypted with the public key but naming the platform certificate
	// (whose signed answer makes the store download certificates).
	_, err = addReceiver(t, client, srv.URL, ct, srv.SigningSerial(m.ID))
	wantParamError(t, err)
}

// TestEncryptAfterCertificateExpired: the certificate the client encrypted
// with expires; the next Encrypt picks the newest valid one, and WeChat
// Pay refuses the expired one.
func TestEncryptAfterCertificateExpired(t *testing.T) {
	srv := newSandbox(t)
	m := srv.Merchant()
	old := srv.SigningSerial(m.ID)
	srv.SetCertificateExpiry(m.ID, old, time.Now().Add(3*time.Second))
	// The store may download again once a second, so that the expiry
	// leads to a new download within the test.
	client, store := newClient(t, srv.Config(), wechatpay.StoreOptions{MinRefreshInterval: time.Second})
	ctx := context.Background()

	ct, serial, err := encrypt(ctx, store, m.ID, "王五")
	if err != nil || serial != old {
		t.Fatalf("Encrypt = %q, %v; want %s", serial, err, old)
	}
	if _, err := addReceiver(t, client, srv.URL, ct, serial); err != nil {
		t.Fatal(err)
	}

	next := srv.AddCertificate(m.ID)
	srv.UseCertificate(m.ID, next)
	var oldCert *rsa.PublicKey
	var expiry time.Time
	for _, c := range srv.Certificates(m.ID) {
		if wire.CertSerial(c) == old {
			oldCert, expiry = c.PublicKey.(*rsa.PublicKey), c.NotAfter
		}
	}
	time.Sleep(time.Until(expiry) + 100*time.Millisecond)

	ct, serial, err = encrypt(ctx, store, m.ID, "王五")
	if err != nil || serial != next {
		t.Fatalf("after expiry Encrypt = %q, %v; want the newest valid %s", serial, err, next)
	}
	got, err := addReceiver(t, client, srv.URL, ct, serial)
	if err != nil {
		t.Fatal(err)
	}
	if name, _ := wechatpay.Decrypt(store, m.ID, got.Name); name != "王五" {
		t.Errorf("round trip gave %q", name)
	}
	stale, err := wire.EncryptOAEP(oldCert, []byte("王五"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = addReceiver(t, client, srv.URL, stale, old)
	wantParamError(t, err)
}

// encrypt encrypts one field with EncryptFields.
func encrypt(ctx context.Context, store *wechatpay.Store, merchantID, plaintext string) (string, string, error) {
	p := plaintext
	serial, err := wechatpay.EncryptFields(ctx, store, merchantID, &p)
	if err != nil {
		return "", "", err
	}
	return p, serial, nil
}
