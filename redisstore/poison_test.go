package redisstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
)

// forgedDownload is what an attacker who can write to Redis but does not
// hold the merchant's APIv3 key can make: a well-formed download listing a
// certificate of their own, encrypted under a key of theirs and signed
// with their certificate's key.
func forgedDownload(t *testing.T) (body []byte, h http.Header, serial string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).Lsh(big.NewInt(7), 150),
		Subject:      pkix.Name{CommonName: "Tenpay.com sign"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	serial = wire.CertSerial(cert)
	aead, _ := wire.NewAEAD("attacker-chosen-key-of-32-bytes!")
	nonce := "0123456789ab"
	ct, err := wire.Seal(aead, nonce, "certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = json.Marshal(wire.CertificatesResponse{Data: []wire.CertificateData{{
		SerialNo:           serial,
		EffectiveTime:      tmpl.NotBefore.Format(time.RFC3339),
		ExpireTime:         tmpl.NotAfter.Format(time.RFC3339),
		EncryptCertificate: wire.EncryptedResource{Algorithm: wire.AlgorithmAESGCM, Nonce: nonce, AssociatedData: "certificate", Ciphertext: ct},
	}}})
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	n := wire.NewNonce()
	sig, err := wire.Sign(key, wire.ResponseMessage(ts, n, body))
	if err != nil {
		t.Fatal(err)
	}
	h = http.Header{}
	h.Set(wire.HeaderTimestamp, ts)
	h.Set(wire.HeaderNonce, n)
	h.Set(wire.HeaderSignature, sig)
	h.Set(wire.HeaderSerial, serial)
	return body, h, serial
}

// TestPoisonedCache: an entry rewritten in Redis by someone without the
// APIv3 key is refused, counted, deleted and replaced by a real download;
// its certificate is never trusted.
func TestPoisonedCache(t *testing.T) {
	r := startRedis(t)
	f := newFleet(t, 1)
	id := f.merchants[0]
	rdb := r.Client()
	ctx := context.Background()
	redisKey := "wechatpay:{" + id + "}:certificates"

	a := f.start(t, r, wechatpay.StoreOptions{})
	f.verifyAll(t, a, f.merchants)
	entry, err := rdb.Get(ctx, redisKey).Bytes()
	if err != nil {
		t.Fatalf("no entry in Redis after a download: %v", err)
	}

	body, h, forgedSerial := forgedDownload(t)
	line, js, _ := bytes.Cut(entry, []byte("\n"))
	poisons := map[string][]byte{
		"attacker's certificate": rewrite(t, line, js, func(m map[string]any) {
			m["body"] = body
			m["header"] = map[string]any{
				"wechatpay_timestamp": h.Get(wire.HeaderTimestamp), "wechatpay_nonce": h.Get(wire.HeaderNonce),
				"wechatpay_signature": h.Get(wire.HeaderSignature), "wechatpay_serial": h.Get(wire.HeaderSerial),
			}
		}),
		"attacker's certificate with the genuine headers": rewrite(t, line, js, func(m map[string]any) { m["body"] = body }),
		"garbage": []byte("expires 99999999999\n{\"format\":1,\"body\":\"////\"}"),
	}
	for name, poison := range poisons {
		t.Run(name, func(t *testing.T) {
			if err := rdb.Set(ctx, redisKey, poison, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}
			before := f.srv.CertificateDownloads()
			b := f.start(t, r, wechatpay.StoreOptions{})
			f.verifyAll(t, b, f.merchants)
			if n := f.srv.CertificateDownloads() - before; n != 1 {
				t.Errorf("%d downloads; want 1 (the poisoned entry replaced)", n)
			}
			if st := b.store.Status(id)[0]; st.CacheRefused != 1 {
				t.Errorf("CacheRefused = %d; want 1", st.CacheRefused)
			}
			errs := b.errs.list()
			if len(errs) != 1 || !errors.Is(errs[0], wechatpay.ErrCertificateDownload) {
				t.Errorf("CacheErrorHandler got %v; want one refusal wrapping ErrCertificateDownload", errs)
			}
			if _, err := b.store.PublicKey(ctx, id, forgedSerial); !errors.Is(err, wechatpay.ErrUnknownSerial) {
				t.Errorf("the attacker's serial gave %v; want ErrUnknownSerial", err)
			}
			// Redis holds a genuine download again: the next instance uses it.
			now, _ := rdb.Get(ctx, redisKey).Bytes()
			if bytes.Equal(now, poison) {
				t.Error("the poisoned entry is still in Redis")
			}
			before = f.srv.CertificateDownloads()
			c := f.start(t, r, wechatpay.StoreOptions{})
			f.verifyAll(t, c, f.merchants)
			if n := f.srv.CertificateDownloads() - before; n != 0 || len(c.errs.list()) != 0 {
				t.Errorf("after the repair: %d downloads, errors %v; want 0 and none", n, c.errs.list())
			}
		})
	}
}

func rewrite(t *testing.T, line, js []byte, edit func(map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(js, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return append(append(append([]byte{}, line...), '\n'), out...)
}
