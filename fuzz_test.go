package wechatpay

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// FuzzVerify: random headers and bodies never verify and never panic.
func FuzzVerify(f *testing.F) {
	fw := newFake(f)
	s := newTestStore(f, StoreOptions{}, fw, "1900000001")
	f.Cleanup(func() { s.Close() })
	serial := wire.CertSerial(fw.certs[0].cert)
	if _, err := s.PublicKey(context.Background(), "1900000001", serial); err != nil {
		f.Fatal(err)
	}
	// Whatever the fuzzer produces, the store must not try to download
	// again: take the endpoint away.
	fw.status = 500
	v := &Verifier{MerchantID: "1900000001", Keys: s}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	good := signedHeader(fw.certs[0].key, serial, time.Now(), []byte(`{"a":1}`))
	f.Add([]byte(`{"a":1}`), now, good.Get(wire.HeaderNonce), good.Get(wire.HeaderSignature)+"x", serial, "")
	f.Add([]byte(`{"a":2}`), good.Get(wire.HeaderTimestamp), good.Get(wire.HeaderNonce), good.Get(wire.HeaderSignature), serial, wire.SchemeRSA)
	f.Add([]byte(``), now, "n", "WECHATPAY/SIGNTEST/abc==", serial, "")
	f.Add([]byte(`{}`), "99999999999999999999", "n", "!!", "PUB_KEY_ID_0000", "WECHATPAY2-SM2-WITH-SM3")
	f.Add([]byte(`{}`), "-1", "", "", "", "")
	f.Fuzz(func(t *testing.T, body []byte, ts, nonce, sig, ser, typ string) {
		h := http.Header{}
		h.Set(wire.HeaderTimestamp, ts)
		h.Set(wire.HeaderNonce, nonce)
		h.Set(wire.HeaderSignature, sig)
		h.Set(wire.HeaderSerial, ser)
		if typ != "" {
			h.Set(wire.HeaderSignatureType, typ)
		}
		if ts == good.Get(wire.HeaderTimestamp) && nonce == good.Get(wire.HeaderNonce) && sig == good.Get(wire.HeaderSignature) && ser == serial && string(body) == `{"a":1}` {
			return // the one genuine input
		}
		if err := v.Verify(context.Background(), h, body); err == nil {
			t.Fatalf("Verify accepted forged input: ts=%q nonce=%q sig=%q serial=%q body=%q", ts, nonce, sig, ser, body)
		}
	})
}

// FuzzParseCertificates: any download body is parsed without panic, and
// whatever is accepted passed every check.
func FuzzParseCertificates(f *testing.F) {
	fw := newFake(f)
	f.Add(fw.certificatesBody())
	f.Add([]byte(`{"data":[{"serial_no":"AB","encrypt_certificate":{"algorithm":"AEAD_AES_256_GCM","nonce":"123456789012","associated_data":"certificate","ciphertext":"AAAA"}}]}`))
	f.Add([]byte(`{"data":[]}`))
	f.Add([]byte(`null`))
	aead, err := wire.NewAEAD(testAPIv3Key)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	f.Fuzz(func(t *testing.T, body []byte) {
		certs, err := parseDownload(body, aead, now, nil)
		if err != nil {
			if certs != nil {
				t.Fatal("certificates returned with an error")
			}
			return
		}
		if len(certs) == 0 {
			t.Fatal("no certificates and no error")
		}
		for _, c := range certs {
			cert, err := c.certificate()
			if err != nil {
				t.Fatal(err)
			}
			if now.Before(cert.NotBefore) || !now.Before(c.notAfter) || c.notAfter.After(cert.NotAfter) || c.serial != wire.CertSerial(cert) {
				t.Fatalf("certificate %s outside its validity accepted", c.serial)
			}
		}
	})
}
