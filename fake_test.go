package wechatpay

// In-memory WeChat Pay for the tests of this package that need what only a
// fake can give: a fake clock (testing/synctest forbids real network I/O in
// its bubble), allocation counts, and benchmarks without a socket. Tests
// of behaviour over HTTP use package wechatpaytest instead.

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

var (
	testKeysOnce sync.Once
	testKeys     []*rsa.PrivateKey
)

// testKey returns one of a few RSA-2048 keys generated once per test binary.
func testKey(i int) *rsa.PrivateKey {
	testKeysOnce.Do(func() {
		for range 4 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			testKeys = append(testKeys, k)
		}
	})
	return testKeys[i%len(testKeys)]
}

const testAPIv3Key = "0123456789abcdef0123456789ABCDEF"

// newTestCert issues a self-signed platform certificate for key.
func newTestCert(t testing.TB, key *rsa.PrivateKey, serial int64, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	sn := new(big.Int).Lsh(big.NewInt(serial), 140) // 18 bytes or so, like a real serial
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: "Tenpay.com sign"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fakeCert is a platform certificate with its private key.
type fakeCert struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
}

// fakeWeChat answers certificate downloads and business calls in memory.
type fakeWeChat struct {
	mu        sync.Mutex
	certs     []fakeCert // listed by the download
	signWith  int        // index into certs of the signing certificate
	apiv3Key  string
	hang      bool // certificate downloads block until their context ends
	status    int  // non-zero: certificate downloads answer this status
	downloads atomic.Int32
	body      []byte           // business response body
	errBody   []byte           // with status: the error JSON; nil means SYSTEM_ERROR
	gate      chan struct{}    // if set, certificate downloads wait for it to close
	expire    map[int]string   // index into certs → expire_time to list instead
	typo      bool             // list expire_time under "expire_time " as WeChat Pay's doc does
	panicWith any              // if set, certificate downloads panic with it
	now       func() time.Time // the clock of response timestamps; nil means time.Now
}

func (f *fakeWeChat) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	f.mu.Lock()
	if req.URL.Path == "/v3/certificates" {
		f.downloads.Add(1)
		hang, status, gate, errBody, p := f.hang, f.status, f.gate, f.errBody, f.panicWith
		f.mu.Unlock()
		if p != nil {
			panic(p)
		}
		if gate != nil {
			select {
			case <-gate:
			case <-req.Context().Done():
				return nil, req.Context().Err()
			}
		}
		if hang {
			<-req.Context().Done()
			return nil, req.Context().Err()
		}
		if status != 0 {
			if errBody == nil {
				errBody = []byte(`{"code":"SYSTEM_ERROR","message":"boom"}`)
			}
			return f.respond(status, errBody), nil
		}
		f.mu.Lock()
		body := f.certificatesBody()
		f.mu.Unlock()
		return f.respond(200, body), nil
	}
	body := f.body
	f.mu.Unlock()
	return f.respond(200, body), nil
}

func (f *fakeWeChat) certificatesBody() []byte {
	aead, err := wire.NewAEAD(f.apiv3Key)
	if err != nil {
		panic(err)
	}
	var resp wire.CertificatesResponse
	for i, c := range f.certs {
		nonce := wire.NewNonce()[:12]
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw})
		ct, err := wire.Seal(aead, nonce, "certificate", pemBytes)
		if err != nil {
			panic(err)
		}
		resp.Data = append(resp.Data, wire.CertificateData{
			SerialNo:           wire.CertSerial(c.cert),
			EffectiveTime:      c.cert.NotBefore.Format(time.RFC3339),
			ExpireTime:         c.cert.NotAfter.Format(time.RFC3339),
			EncryptCertificate: wire.EncryptedResource{Algorithm: wire.AlgorithmAESGCM, Nonce: nonce, AssociatedData: "certificate", Ciphertext: ct},
		})
		if e, ok := f.expire[i]; ok {
			resp.Data[i].ExpireTime = e
		}
	}
	b, _ := json.Marshal(resp)
	if f.typo {
		b = bytes.ReplaceAll(b, []byte(`"expire_time":`), []byte(`"expire_time ":`))
	}
	return b
}

// respond builds a response signed by the current signing certificate.
func (f *fakeWeChat) respond(status int, body []byte) *http.Response {
	f.mu.Lock()
	c := f.certs[f.signWith]
	now := time.Now
	if f.now != nil {
		now = f.now
	}
	f.mu.Unlock()
	h := signedHeader(c.key, wire.CertSerial(c.cert), now(), body)
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}
}

// signedHeader returns the Wechatpay-* headers signing body at ts.
func signedHeader(key *rsa.PrivateKey, serial string, ts time.Time, body []byte) http.Header {
	tss := strconv.FormatInt(ts.Unix(), 10)
	nonce := wire.NewNonce()
	sig, err := wire.Sign(key, wire.ResponseMessage(tss, nonce, body))
	if err != nil {
		panic(err)
	}
	h := http.Header{}
	h.Set(wire.HeaderTimestamp, tss)
	h.Set(wire.HeaderNonce, nonce)
	h.Set(wire.HeaderSignature, sig)
	h.Set(wire.HeaderSerial, serial)
	h.Set(wire.HeaderSignatureType, wire.SchemeRSA)
	h.Set(wire.HeaderRequestID, "08F1A2B3C4D5")
	return h
}

// newFake returns a fake with one certificate valid for five years from now.
func newFake(t testing.TB) *fakeWeChat {
	now := time.Now()
	return &fakeWeChat{
		certs:    []fakeCert{{newTestCert(t, testKey(1), 1, now.Add(-time.Hour), now.Add(5*365*24*time.Hour)), testKey(1)}},
		apiv3Key: testAPIv3Key,
		body:     []byte(`{"ok":true}`),
	}
}

// testConfig is the configuration of merchant id against f.
func testConfig(id string, f *fakeWeChat) Config {
	return Config{
		MerchantID:        id,
		CertificateSerial: "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
		PrivateKey:        testKey(0),
		APIv3Key:          testAPIv3Key,
		BaseURL:           "https://api.mch.weixin.qq.com",
		Base:              f,
	}
}
