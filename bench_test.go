package wechatpay

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// BenchmarkSignFloor is the RSA-2048 signature alone: the floor under the
// signing half of RoundTrip.
func BenchmarkSignFloor(b *testing.B) {
	key := testKey(0)
	d := sha256.Sum256([]byte("POST\n/v3/pay/transactions/jsapi\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{}\n"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, d[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyFloor is the RSA-2048 verification alone.
func BenchmarkVerifyFloor(b *testing.B) {
	key := testKey(1)
	d := sha256.Sum256([]byte(`1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{"ok":true}\n`))
	sig, _ := rsa.SignPKCS1v15(nil, key, crypto.SHA256, d[:])
	b.ReportAllocs()
	for b.Loop() {
		if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, d[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

// presigned is a Base that answers every request with the same response,
// signed once: what is measured is the Transport, not a server.
type presigned struct {
	header http.Header
	body   []byte
}

func (p *presigned) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: p.header.Clone(), Body: io.NopCloser(bytes.NewReader(p.body)), ContentLength: int64(len(p.body)), Request: req}, nil
}

func benchTransport(b *testing.B) (*Transport, *http.Request) {
	f := newFake(b)
	s := newTestStore(b, StoreOptions{}, f, "1900000001")
	b.Cleanup(func() { s.Close() })
	serial := wire.CertSerial(f.certs[0].cert)
	if _, err := s.PublicKey(context.Background(), "1900000001", serial); err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"appid":"wxd678efh567hg6787","mchid":"1900000001","out_trade_no":"1217752501201407033233368018","trade_state":"SUCCESS","amount":{"total":100,"currency":"CNY"}}`)
	p := &presigned{header: signedHeader(f.certs[0].key, serial, time.Now(), body), body: body}
	t := &Transport{
		Signer:   &Signer{MerchantID: "1900000001", CertificateSerial: "5157F09EFDC096DE15EBE81A47057A7232F1B8E1", Key: testKey(0)},
		Verifier: &Verifier{MerchantID: "1900000001", Keys: s},
		Base:     p,
	}
	req, _ := http.NewRequest("POST", "https://api.mch.weixin.qq.com/v3/pay/transactions/jsapi", strings.NewReader(`{"appid":"wxd678efh567hg6787","mchid":"1900000001","description":"Image形象店-深圳腾大-QQ公仔","out_trade_no":"1217752501201407033233368018","amount":{"total":100,"currency":"CNY"}}`))
	return t, req
}

func roundTripOnce(b *testing.B, t *Transport, req *http.Request) {
	r := req.Clone(req.Context())
	r.Body, _ = req.GetBody()
	resp, err := t.RoundTrip(r)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// BenchmarkRoundTrip is sign + send (in memory) + verify + plumbing.
func BenchmarkRoundTrip(b *testing.B) {
	t, req := benchTransport(b)
	b.ReportAllocs()
	for b.Loop() {
		roundTripOnce(b, t, req)
	}
}

// BenchmarkRoundTripParallel is BenchmarkRoundTrip on every core.
func BenchmarkRoundTripParallel(b *testing.B) {
	t, req := benchTransport(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			roundTripOnce(b, t, req)
		}
	})
}

// BenchmarkStoreHit is the lookup of a cached certificate.
func BenchmarkStoreHit(b *testing.B) {
	f := newFake(b)
	s := newTestStore(b, StoreOptions{}, f, "1900000001")
	defer s.Close()
	serial := wire.CertSerial(f.certs[0].cert)
	ctx := context.Background()
	if _, err := s.PublicKey(ctx, "1900000001", serial); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.PublicKey(ctx, "1900000001", serial); err != nil {
			b.Fatal(err)
		}
	}
}
