package main

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSandboxMerchantCertificate checks that the sandbox writes
// apiclient_cert.pem, names it in merchant.json, and that its serial, as
// a client formatting the serial number itself computes it, is
// merchant.json's serial.
func TestSandboxMerchantCertificate(t *testing.T) {
	_, dir, _ := startSandboxCmd(t)
	file := readMerchantJSON(t, dir)
	if file["certificate"] != "apiclient_cert.pem" {
		t.Fatalf("merchant.json certificate = %q; want apiclient_cert.pem", file["certificate"])
	}
	data, err := os.ReadFile(filepath.Join(dir, file["certificate"]))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("apiclient_cert.pem is not a PEM certificate:\n%s", data)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.ToUpper(cert.SerialNumber.Text(16)); got != file["serial"] {
		t.Errorf("certificate serial %s; merchant.json serial %s", got, file["serial"])
	}
	if cert.Subject.CommonName != file["mchid"] {
		t.Errorf("certificate CN %q; want the mchid %s", cert.Subject.CommonName, file["mchid"])
	}
	key, err := os.ReadFile(filepath.Join(dir, file["private_key"]))
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := pem.Decode(key)
	priv, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !priv.(*rsa.PrivateKey).PublicKey.Equal(cert.PublicKey) {
		t.Error("apiclient_cert.pem does not hold the public half of apiclient_key.pem")
	}
}

// TestSandboxPublicKeyOnly runs "wechatpay sandbox -public-key-only": the
// certificate download answers 404 RESOURCE_NOT_EXISTS, and a client in
// public-key mode gets answers signed with the public key.
func TestSandboxPublicKeyOnly(t *testing.T) {
	_, dir, stop := startSandboxCmd(t, "-public-key-only")
	file := readMerchantJSON(t, dir)
	id := file["public_key_id"]
	if !strings.HasPrefix(id, "PUB_KEY_ID_") || file["public_key"] != "pub_key.pem" {
		t.Fatalf("merchant.json: %v", file)
	}
	wantCode(t, runApp(t, nil, "", "certs", "-sandbox-dir", dir, "-o", t.TempDir()), exitAPIError, "404 RESOURCE_NOT_EXISTS")
	order := fmt.Sprintf(`{"appid":"wx1","mchid":%q,"description":"d","out_trade_no":"PUBONLY01","notify_url":"http://127.0.0.1:1/n","amount":{"total":1}}`, file["mchid"])
	r := runApp(t, nil, "", "post", "-v", "-sandbox-dir", dir, "-public-key-id", id, "-public-key", filepath.Join(dir, "pub_key.pem"), "/v3/pay/transactions/native", "-d", order)
	wantCode(t, r, exitOK, "Wechatpay-Serial "+id, `"code_url":"`)
	res := stop()
	wantCode(t, res, exitOK, "public-key-only merchant", id)
}

func TestSandboxModeFlagsExclusive(t *testing.T) {
	wantCode(t, runApp(t, nil, "", "sandbox", "-addr", "127.0.0.1:0", "-dir", t.TempDir(), "-public-key-only", "-migrating"), exitUsage, "exclude each other")
}
