package wechatpay_test

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// TestNoSecretsPrinted formats every type that holds a secret, and the
// errors of misconfiguration, and looks for the secrets in the output.
func TestNoSecretsPrinted(t *testing.T) {
	srv := newSandbox(t)
	m := srv.Merchant()
	cfg := srv.Config()
	der, err := x509.MarshalPKCS8PrivateKey(m.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{
		"APIv3 key":          m.APIv3Key,
		"private key (b64)":  base64.StdEncoding.EncodeToString(der)[40:80],
		"private exponent":   m.PrivateKey.D.String()[:30],
		"private exponent16": fmt.Sprintf("%x", m.PrivateKey.D)[:30],
	}

	var outputs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		outputs = append(outputs,
			fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, &cfg), fmt.Sprintf(verb, m),
			fmt.Sprintf(verb, &wechatpay.Signer{MerchantID: m.ID, CertificateSerial: m.CertificateSerial, Key: m.PrivateKey}))
	}
	tr, err := wechatpay.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outputs = append(outputs, fmt.Sprintf("%+v", tr.Signer))

	// Errors: a bad APIv3 key, a wrong APIv3 key at download time, a wrong
	// merchant key (SIGN_ERROR), bad key files.
	bad := cfg
	bad.APIv3Key = m.APIv3Key[:31]
	_, err = wechatpay.NewTransport(bad)
	outputs = append(outputs, errString(err))

	wrong := cfg
	wrong.APIv3Key = strings.Repeat("k", 32)
	secrets["wrong APIv3 key"] = wrong.APIv3Key
	client, _ := newClient(t, wrong, wechatpay.StoreOptions{})
	_, err = client.Get(srv.URL + "/v3/echo/x")
	if !errors.Is(err, wechatpay.ErrDecrypt) {
		t.Errorf("wrong APIv3 key: %v; want ErrDecrypt", err)
	}
	outputs = append(outputs, errString(err))

	// A request that fails verification: its Authorization must not leak.
	var sentAuth string
	cfgSpy := cfg
	cfgSpy.Base = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path == "/v3/echo/spy" {
			sentAuth = r.Header.Get("Authorization")
		}
		return cfg.Base.RoundTrip(r)
	})
	spy, _ := newClient(t, cfgSpy, wechatpay.StoreOptions{})
	srv.SetFault(wechatpaytest.FaultTamperBody)
	_, err = spy.Get(srv.URL + "/v3/echo/spy")
	srv.SetFault(wechatpaytest.FaultNone)
	if err == nil || sentAuth == "" {
		t.Fatalf("spy request: err %v, Authorization %q", err, sentAuth)
	}
	outputs = append(outputs, errString(err))
	sig := sentAuth[strings.Index(sentAuth, `signature="`)+11:]
	secrets["request signature"] = sig[:40]

	dir := t.TempDir()
	pemPath := filepath.Join(dir, "apiclient_key.pem")
	os.WriteFile(pemPath, []byte("-----BEGIN PRIVATE KEY-----\n"+base64.StdEncoding.EncodeToString(der[:200])+"\n-----END PRIVATE KEY-----\n"), 0o600)
	_, err = wechatpay.LoadPrivateKeyFile(pemPath)
	if err == nil {
		t.Error("LoadPrivateKeyFile of a truncated key succeeded")
	}
	outputs = append(outputs, errString(err))
	secrets["truncated key (b64)"] = base64.StdEncoding.EncodeToString(der[:200])[40:80]

	for _, out := range outputs {
		for name, secret := range secrets {
			if strings.Contains(out, secret) {
				t.Errorf("output contains the %s: %s", name, out)
			}
		}
		if strings.Contains(out, "WECHATPAY2-SHA256-RSA2048 mchid") {
			t.Errorf("output contains an Authorization header: %s", out)
		}
	}
	if !strings.Contains(outputs[0], m.ID) || !strings.Contains(outputs[0], "[redacted]") {
		t.Errorf("Config printed as %s; want the merchant ID and [redacted] secrets", outputs[0])
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
