package wire

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

// Keys are generated once per test binary: RSA generation is slow.
var (
	keysOnce         sync.Once
	key2048, key1024 *rsa.PrivateKey
)

func testKeys(t *testing.T) (*rsa.PrivateKey, *rsa.PrivateKey) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if key2048, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if key1024, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
			panic(err)
		}
	})
	return key2048, key1024
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// certPEM returns a PEM certificate for key with serial, valid from
// notBefore to notAfter, signed by parent (nil: self-signed).
func certPEM(t *testing.T, key *rsa.PrivateKey, serial int64, notBefore, notAfter time.Time, parent *x509.Certificate, parentKey *rsa.PrivateKey) ([]byte, *x509.Certificate) {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: fmt.Sprintf("test %x", serial)},
		NotBefore: notBefore, NotAfter: notAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), c
}

const testAPIv3Key = "0123456789abcdef0123456789abcdef"

func TestRequestAndResponseMessage(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"GET, no body", RequestMessage("GET", "/v3/certificates", 1554208460, "593BEC0C930BF1AFEB40B4A08C8FB242", nil),
			"GET\n/v3/certificates\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n"},
		{"POST with query and body", RequestMessage("POST", "/v3/x?a=1&b=%2F", 1, "N", []byte(`{"k":"v"}`)),
			"POST\n/v3/x?a=1&b=%2F\n1\nN\n{\"k\":\"v\"}\n"},
		{"body bytes kept exactly", RequestMessage("PUT", "/", 0, "", []byte("a\r\n b\n")), "PUT\n/\n0\n\na\r\n b\n\n"},
		{"response", ResponseMessage("1554209980", "c5ac7061fccab6bf3e254dcf98995b8c", []byte(`{"data":[]}`)),
			"1554209980\nc5ac7061fccab6bf3e254dcf98995b8c\n{\"data\":[]}\n"},
		{"response without body (204)", ResponseMessage("1", "n", nil), "1\nn\n\n"},
		{"timestamp as sent, not reformatted", ResponseMessage("0001", "n", nil), "0001\nn\n\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if string(tc.got) != tc.want {
				t.Errorf("message = %q; want %q", tc.got, tc.want)
			}
		})
	}
}

func TestSignVerify(t *testing.T) {
	key, other := testKeys(t)
	msg := ResponseMessage("1", "n", []byte("body"))
	sig, err := Sign(key, msg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := base64.StdEncoding.DecodeString(sig); err != nil || len(sig) != 344 {
		t.Errorf("Sign = %q; want padded standard Base64 of 256 bytes", sig)
	}
	otherSig, _ := Sign(other, msg)
	tests := []struct {
		name string
		pub  *rsa.PublicKey
		msg  []byte
		sig  string
		ok   bool
	}{
		{"valid", &key.PublicKey, msg, sig, true},
		{"changed message", &key.PublicKey, ResponseMessage("1", "n", []byte("bodY")), sig, false},
		{"other key", &key.PublicKey, msg, otherSig, false},
		{"no key", nil, msg, sig, false},
		{"not base64", &key.PublicKey, msg, "!!" + sig[2:], false},
		{"URL-safe base64", &key.PublicKey, msg, strings.NewReplacer("+", "-", "/", "_").Replace(sig), !strings.ContainsAny(sig, "+/")},
		{"too long", &key.PublicKey, msg, strings.Repeat("A", 1000), false},
		{"empty", &key.PublicKey, msg, "", false},
		{"probe", &key.PublicKey, msg, ProbePrefix + sig, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.pub, tc.msg, tc.sig)
			if tc.ok != (err == nil) {
				t.Fatalf("Verify = %v; want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadSignature) {
				t.Errorf("Verify = %v; want ErrBadSignature", err)
			}
		})
	}
	if _, err := Sign(nil, msg); err == nil {
		t.Error("Sign(nil key) succeeded")
	}
}

func TestParseAuthorization(t *testing.T) {
	const good = `mchid="1900009191",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",signature="c2ln",timestamp="1554208460",serial_no="1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C"`
	want := AuthParams{MerchantID: "1900009191", Nonce: "593BEC0C930BF1AFEB40B4A08C8FB242", Timestamp: "1554208460", Serial: "1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C", Signature: "c2ln"}
	tests := []struct {
		name, header string
		wantErr      string // empty: success
	}{
		{"valid", SchemeRSA + " " + good, ""},
		{"spaces after commas", SchemeRSA + " " + strings.ReplaceAll(good, ",", ", "), ""},
		{"wrong scheme", "WECHATPAY2-SHA256-RSA " + good, "want scheme"},
		{"no scheme", good, "want scheme"},
		{"unquoted value", SchemeRSA + ` mchid=1900009191,` + good[len(`mchid="1900009191",`):], "malformed pair"},
		{"no equals sign", SchemeRSA + " mchid," + good, "malformed pair"},
		{"unknown key", SchemeRSA + " " + good + `,extra="1"`, "unknown key"},
		{"duplicate key", SchemeRSA + " " + good + `,mchid="1"`, "duplicate key"},
		{"missing key", SchemeRSA + " " + good[:strings.LastIndex(good, ",")], "want mchid, nonce_str"},
		{"empty value", SchemeRSA + ` mchid="",` + good[len(`mchid="1900009191",`):], "want mchid, nonce_str"},
		{"empty", "", "want scheme"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseAuthorization(tc.header)
			if tc.wantErr == "" {
				if err != nil || got != want {
					t.Fatalf("ParseAuthorization = %+v, %v; want %+v", got, err, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseAuthorization = %v; want an error containing %q", err, tc.wantErr)
			}
			if strings.Count(err.Error(), "wechatpay:") != 1 {
				t.Errorf("error %q: want one prefix", err)
			}
		})
	}
}

func TestParseBaseURLAndNormalHost(t *testing.T) {
	for _, tc := range []struct {
		base string
		ok   bool
	}{
		{"https://api.mch.weixin.qq.com", true},
		{"http://127.0.0.1:8080", true},
		{"https://api.mch.weixin.qq.com/", true},
		{"ftp://example.com", false},
		{"api.mch.weixin.qq.com", false},
		{"https://", false},
		{"://x", false},
		{"", false},
	} {
		_, err := ParseBaseURL(tc.base)
		if tc.ok != (err == nil) {
			t.Errorf("ParseBaseURL(%q) = %v; want ok %v", tc.base, err, tc.ok)
		}
	}
	if _, err := ParseBaseURL("ftp://" + strings.Repeat("x", 200)); err == nil || len(err.Error()) > 150 {
		t.Errorf("ParseBaseURL(long) = %v; want a short error", err)
	}
	for _, tc := range []struct{ scheme, host, want string }{
		{"https", "API.mch.weixin.qq.com", "api.mch.weixin.qq.com"},
		{"https", "api.mch.weixin.qq.com:443", "api.mch.weixin.qq.com"},
		{"http", "example.com:80", "example.com"},
		{"https", "example.com:80", "example.com:80"},
		{"http", "example.com:443", "example.com:443"},
		{"https", "[::1]:443", "[::1]"},
		{"http", "[::1]:8080", "[::1]:8080"},
		{"https", "example.com", "example.com"},
	} {
		if got := NormalHost(tc.scheme, tc.host); got != tc.want {
			t.Errorf("NormalHost(%q, %q) = %q; want %q", tc.scheme, tc.host, got, tc.want)
		}
	}
}

// closeCounter counts Close calls on a reader.
type closeCounter struct {
	io.Reader
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

func TestReadAll(t *testing.T) {
	body := []byte("0123456789")
	tests := []struct {
		name        string
		r           io.Reader
		size, limit int64
		want        string
		wantErr     error // nil: success; errAny: any error
	}{
		{"known size", bytes.NewReader(body), 10, 10, "0123456789", nil},
		{"unknown size", bytes.NewReader(body), -1, 10, "0123456789", nil},
		{"unknown size, one-byte reads", iotest.OneByteReader(bytes.NewReader(body)), -1, 10, "0123456789", nil},
		{"empty, unknown size", bytes.NewReader(nil), -1, 10, "", nil},
		{"size over limit, nothing read", strings.NewReader(""), 11, 10, "", ErrBodyTooLarge},
		{"unknown size over limit", bytes.NewReader(body), -1, 9, "", ErrBodyTooLarge},
		{"longer than its Content-Length", bytes.NewReader(body), 5, 10, "", errAny},
		{"shorter than its Content-Length", bytes.NewReader(body), 11, 20, "", io.ErrUnexpectedEOF},
		{"read error", iotest.ErrReader(errBoom), -1, 10, "", errBoom},
		{"read error, known size", iotest.ErrReader(errBoom), 5, 10, "", errBoom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadAll(tc.r, tc.size, tc.limit)
			switch {
			case tc.wantErr == nil && (err != nil || string(got) != tc.want):
				t.Fatalf("ReadAll = %q, %v; want %q", got, err, tc.want)
			case tc.wantErr == errAny && err == nil, tc.wantErr != nil && tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				t.Fatalf("ReadAll = %q, %v; want error %v", got, err, tc.wantErr)
			}
		})
	}
}

var (
	errAny  = errors.New("any error")
	errBoom = errors.New("boom")
)

func TestReadRequestBody(t *testing.T) {
	for _, tc := range []struct {
		name     string
		body     string
		nilBody  bool
		length   int64
		limit    int64
		want     string
		tooLarge bool
	}{
		{"nil body", "", true, 0, 10, "", false},
		{"body", "abc", false, 3, 10, "abc", false},
		{"body, length 0 means unknown", "abc", false, 0, 10, "abc", false},
		{"over the limit", "abcdef", false, 6, 3, "", true},
		{"over the limit, unknown length", "abcdef", false, -1, 3, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, "https://example.com/", nil)
			cc := &closeCounter{Reader: strings.NewReader(tc.body)}
			if !tc.nilBody {
				req.Body, req.ContentLength = cc, tc.length
			}
			got, err := ReadRequestBody(req, tc.limit)
			if tc.tooLarge != errors.Is(err, ErrBodyTooLarge) || (!tc.tooLarge && (err != nil || string(got) != tc.want)) {
				t.Fatalf("ReadRequestBody = %q, %v; want %q (too large: %v)", got, err, tc.want, tc.tooLarge)
			}
			if !tc.nilBody && cc.closed != 1 {
				t.Errorf("body closed %d times; want once", cc.closed)
			}
		})
	}
	req, _ := http.NewRequest(http.MethodGet, "https://example.com/", http.NoBody)
	if b, err := ReadRequestBody(req, 1); b != nil || err != nil {
		t.Errorf("ReadRequestBody(NoBody) = %q, %v", b, err)
	}
}

func TestReadResponseBody(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method string
		status int
		want   string
	}{
		{"200", http.MethodGet, 200, "body"},
		{"4xx has a body", http.MethodPost, 400, "body"},
		{"HEAD has none", http.MethodHead, 200, ""},
		{"204 has none", http.MethodDelete, 204, ""},
		{"304 has none", http.MethodGet, 304, ""},
		{"1xx has none", http.MethodGet, 103, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := &closeCounter{Reader: strings.NewReader("body")}
			resp := &http.Response{StatusCode: tc.status, Body: cc, ContentLength: 4}
			got, err := ReadResponseBody(resp, tc.method, 10)
			if err != nil || string(got) != tc.want {
				t.Fatalf("ReadResponseBody = %q, %v; want %q", got, err, tc.want)
			}
			if cc.closed != 1 {
				t.Errorf("body closed %d times; want once", cc.closed)
			}
		})
	}
	cc := &closeCounter{Reader: strings.NewReader("0123456789")}
	if _, err := ReadResponseBody(&http.Response{StatusCode: 200, Body: cc, ContentLength: -1}, http.MethodGet, 5); !errors.Is(err, ErrBodyTooLarge) || cc.closed != 1 {
		t.Errorf("ReadResponseBody(over limit) = %v, closed %d; want ErrBodyTooLarge, closed once", err, cc.closed)
	}
}

func TestSealOpen(t *testing.T) {
	aead, err := NewAEAD(testAPIv3Key)
	if err != nil {
		t.Fatal(err)
	}
	wrong, _ := NewAEAD(strings.Repeat("w", 32))
	const nonce, ad = "0123456789ab", "certificate"
	ct, err := Seal(aead, nonce, ad, []byte("plaintext"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(ct)
	flipped := bytes.Clone(raw)
	flipped[0] ^= 1
	tests := []struct {
		name                  string
		aead                  cipher.AEAD
		nonce, ad, ciphertext string
		decryptErr            bool // wants ErrDecrypt
	}{
		{"round trip", aead, nonce, ad, ct, false},
		{"wrong APIv3 key", wrong, nonce, ad, ct, true},
		{"altered ciphertext", aead, nonce, ad, base64.StdEncoding.EncodeToString(flipped), true},
		{"altered associated data", aead, nonce, "transaction", ct, true},
		{"other nonce", aead, "ba9876543210", ad, ct, true},
		{"short nonce", aead, "short", ad, ct, false},
		{"not base64", aead, nonce, ad, "%%%", false},
		{"truncated (no tag)", aead, nonce, ad, base64.StdEncoding.EncodeToString(raw[:8]), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Open(tc.aead, tc.nonce, tc.ad, tc.ciphertext)
			if tc.name == "round trip" {
				if err != nil || string(got) != "plaintext" {
					t.Fatalf("Open = %q, %v", got, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Open = %q; want an error", got)
			}
			if tc.decryptErr != errors.Is(err, ErrDecrypt) {
				t.Errorf("Open = %v; ErrDecrypt %v, want %v", err, errors.Is(err, ErrDecrypt), tc.decryptErr)
			}
		})
	}
	if _, err := Seal(aead, "short", ad, nil); err == nil {
		t.Error("Seal with a short nonce succeeded")
	}
	for _, k := range []string{"", "short", strings.Repeat("k", 31), strings.Repeat("k", 33)} {
		if _, err := NewAEAD(k); !errors.Is(err, ErrAPIv3Key) || (k != "" && strings.Contains(err.Error(), k)) {
			t.Errorf("NewAEAD(%d bytes) = %v; want ErrAPIv3Key without the key", len(k), err)
		}
	}
}

func TestEncryptOAEP(t *testing.T) {
	key, _ := testKeys(t)
	ct, err := EncryptOAEP(&key.PublicKey, []byte("张三"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(ct)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := rsa.DecryptOAEP(sha1.New(), nil, key, raw, nil)
	if err != nil || string(pt) != "张三" {
		t.Errorf("DecryptOAEP = %q, %v; want the plaintext (RSA-OAEP, SHA-1)", pt, err)
	}
	if _, err := EncryptOAEP(&key.PublicKey, make([]byte, 215)); err == nil || !strings.Contains(err.Error(), "at most 214") {
		t.Errorf("EncryptOAEP(215 bytes) = %v; want at most 214", err)
	}
	if _, err := EncryptOAEP(&key.PublicKey, make([]byte, 214)); err != nil {
		t.Errorf("EncryptOAEP(214 bytes) = %v", err)
	}
	if _, err := EncryptOAEP(nil, nil); err == nil {
		t.Error("EncryptOAEP(nil key) succeeded")
	}
}

func TestMarking(t *testing.T) {
	t.Run("mark and check", func(t *testing.T) {
		h := http.Header{}
		if IsVerified(h) {
			t.Fatal("an unmarked header is verified")
		}
		MarkVerified(h)
		if !IsVerified(h) {
			t.Fatal("a marked header is not verified")
		}
	})
	t.Run("forged marks", func(t *testing.T) {
		for _, v := range [][]string{{"true"}, {"1"}, {""}, {strings.ToLower(verifiedToken)}, {verifiedToken, verifiedToken}} {
			if IsVerified(http.Header{VerifiedHeader: v}) {
				t.Errorf("IsVerified(%q) = true", v)
			}
		}
	})
	t.Run("forget", func(t *testing.T) {
		resp := &http.Response{Header: http.Header{}}
		MarkVerified(resp.Header)
		resp.Header.Add(VerifiedHeader, "x")
		ForgetVerified(resp)
		if _, ok := resp.Header[VerifiedHeader]; ok || IsVerified(resp.Header) {
			t.Errorf("ForgetVerified left %q", resp.Header[VerifiedHeader])
		}
		nilHeader := &http.Response{}
		ForgetVerified(nilHeader)
		if nilHeader.Header == nil {
			t.Error("ForgetVerified left a nil Header")
		}
	})
	t.Run("the token is this process's", func(t *testing.T) {
		if len(verifiedToken) != 32 || verifiedToken == NewNonce() {
			t.Errorf("verifiedToken %q: want 32 random characters", verifiedToken)
		}
	})
}

func TestUnverifiedAllowed(t *testing.T) {
	marked := WithoutVerification(context.Background())
	redirected := func() *http.Request {
		r, _ := http.NewRequestWithContext(marked, http.MethodGet, "https://example.com/next", nil)
		r.Response = &http.Response{StatusCode: http.StatusFound}
		return r
	}
	for _, tc := range []struct {
		name string
		req  func() *http.Request
		want bool
	}{
		{"marked GET", func() *http.Request {
			r, _ := http.NewRequestWithContext(marked, http.MethodGet, "https://example.com/", nil)
			return r
		}, true},
		{"marked, empty method (GET)", func() *http.Request {
			r, _ := http.NewRequestWithContext(marked, http.MethodGet, "https://example.com/", nil)
			r.Method = ""
			return r
		}, true},
		{"unmarked GET", func() *http.Request { r, _ := http.NewRequest(http.MethodGet, "https://example.com/", nil); return r }, false},
		{"marked POST", func() *http.Request {
			r, _ := http.NewRequestWithContext(marked, http.MethodPost, "https://example.com/", nil)
			return r
		}, false},
		{"marked GET following a redirect", redirected, false},
		{"a false mark", func() *http.Request {
			r, _ := http.NewRequestWithContext(context.WithValue(context.Background(), unverifiedKey{}, false), http.MethodGet, "https://example.com/", nil)
			return r
		}, false},
	} {
		if got := UnverifiedAllowed(tc.req()); got != tc.want {
			t.Errorf("%s: UnverifiedAllowed = %v; want %v", tc.name, got, tc.want)
		}
	}
}

func TestSmallHelpers(t *testing.T) {
	if n := NewNonce(); len(n) != 32 || strings.ToUpper(n) != n || strings.Trim(n, "0123456789ABCDEF") != "" {
		t.Errorf("NewNonce = %q; want 32 upper-case hex characters", n)
	}
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{{"abc", 3, "abc"}, {"abcd", 3, "abc…"}, {"", 0, ""}} {
		if got := Truncate(tc.s, tc.n); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q; want %q", tc.s, tc.n, got, tc.want)
		}
	}
	if UserAgent("") == "" || UserAgent("mine") != "mine" {
		t.Error("UserAgent: want the default for empty, the caller's otherwise")
	}
	if Base(nil) != http.DefaultTransport {
		t.Error("Base(nil) is not http.DefaultTransport")
	}
	if Redacted(true) != "[redacted]" || Redacted(false) != "[unset]" {
		t.Error("Redacted")
	}
	key, _ := testKeys(t)
	// Upper-case hex, two digits per byte of the serial.
	for serial, want := range map[int64]string{0x0ABCDE0F: "0ABCDE0F", 0x1A2B: "1A2B", 0x7F: "7F"} {
		_, c := certPEM(t, key, serial, t0, t0.Add(time.Hour), nil, nil)
		if got := CertSerial(c); got != want {
			t.Errorf("CertSerial(%#x) = %q; want %q", serial, got, want)
		}
	}
}

func TestParseCertificatePEM(t *testing.T) {
	key, _ := testKeys(t)
	good, _ := certPEM(t, key, 1, t0, t0.Add(time.Hour), nil, nil)
	for _, tc := range []struct {
		name string
		pem  []byte
		ok   bool
	}{
		{"certificate", good, true},
		{"not PEM", []byte("hello"), false},
		{"other block type", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}}), false},
		{"garbage DER", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), false},
	} {
		_, err := ParseCertificatePEM(tc.pem)
		if tc.ok != (err == nil) {
			t.Errorf("%s: ParseCertificatePEM = %v; want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && strings.Count(err.Error(), "wechatpay:") != 1 {
			t.Errorf("%s: error %q: want one prefix", tc.name, err)
		}
	}
}

// download builds the body of a certificate download from entries.
func download(t *testing.T, entries ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{"data": entries})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// entry is one download entry for a certificate, sealed with aead.
func entry(t *testing.T, aead cipher.AEAD, serial string, certPEM []byte) map[string]any {
	t.Helper()
	ct, err := Seal(aead, "0123456789ab", "certificate", certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"serial_no": serial, "effective_time": "2026-01-01T00:00:00+08:00", "expire_time": "2031-01-01T00:00:00+08:00",
		"encrypt_certificate": map[string]any{"algorithm": AlgorithmAESGCM, "nonce": "0123456789ab", "associated_data": "certificate", "ciphertext": ct}}
}

func TestParseDownload(t *testing.T) {
	key, small := testKeys(t)
	aead, _ := NewAEAD(testAPIv3Key)
	wrong, _ := NewAEAD(strings.Repeat("w", 32))
	now := t0.Add(24 * time.Hour)
	valid, _ := certPEM(t, key, 0x1A, t0, t0.Add(365*24*time.Hour), nil, nil)
	expired, _ := certPEM(t, key, 0x2A, t0.Add(-48*time.Hour), t0, nil, nil)
	future, _ := certPEM(t, key, 0x3A, now.Add(time.Hour), now.Add(48*time.Hour), nil, nil)
	weak, _ := certPEM(t, small, 0x4A, t0, t0.Add(365*24*time.Hour), nil, nil)
	rootPEM, root := certPEM(t, key, 0x5A, t0, t0.Add(365*24*time.Hour), nil, nil)
	chained, _ := certPEM(t, key, 0x6A, t0, t0.Add(365*24*time.Hour), root, key)
	roots := x509.NewCertPool()
	roots.AddCert(root)
	otherRoots := x509.NewCertPool()
	_, otherRoot := certPEM(t, key, 0x7A, t0, t0.Add(365*24*time.Hour), nil, nil)
	otherRoots.AddCert(otherRoot)

	earlier := entry(t, aead, "1A", valid)
	earlier["expire_time"] = now.Add(-time.Minute).Format(time.RFC3339)
	typo := entry(t, aead, "1A", valid)
	delete(typo, "expire_time")
	typo["expire_time "] = now.Add(time.Hour).Format(time.RFC3339)
	badAlg := entry(t, aead, "1A", valid)
	badAlg["encrypt_certificate"].(map[string]any)["algorithm"] = "AES_128_CBC"
	junkExpire := entry(t, aead, "1A", valid)
	junkExpire["expire_time"] = "soon"

	tests := []struct {
		name     string
		body     []byte
		roots    *x509.CertPool
		serials  []string // success: the certificates kept
		notAfter time.Time
		wantErr  string
		decrypt  bool // the error wraps ErrDecrypt
	}{
		{"valid", download(t, entry(t, aead, "1A", valid)), nil, []string{"1A"}, time.Time{}, "", false},
		{"serial in lower case", download(t, entry(t, aead, "1a", valid)), nil, []string{"1A"}, time.Time{}, "", false},
		{"expired ones left out", download(t, entry(t, aead, "1A", valid), entry(t, aead, "2A", expired)), nil, []string{"1A"}, time.Time{}, "", false},
		{"not yet valid left out", download(t, entry(t, aead, "1A", valid), entry(t, aead, "3A", future)), nil, []string{"1A"}, time.Time{}, "", false},
		{"only expired", download(t, entry(t, aead, "2A", expired)), nil, nil, time.Time{}, "no usable certificate", false},
		{"expire_time earlier than NotAfter", download(t, earlier), nil, nil, time.Time{}, "expired at", false},
		{"expire_time with WeChat Pay's typo", download(t, typo), nil, []string{"1A"}, now.Add(time.Hour), "", false},
		{"unparseable expire_time ignored", download(t, junkExpire), nil, []string{"1A"}, time.Time{}, "", false},
		{"wrong APIv3 key", download(t, entry(t, wrong, "1A", valid)), nil, nil, time.Time{}, "no certificate decrypts", true},
		{"one of two does not decrypt", download(t, entry(t, aead, "1A", valid), entry(t, wrong, "2A", valid)), nil, nil, time.Time{}, "1 of 2", true},
		{"serial mismatch", download(t, entry(t, aead, "FF", valid)), nil, nil, time.Time{}, "has serial 1A", false},
		{"weak key", download(t, entry(t, aead, "4A", weak)), nil, nil, time.Time{}, "1024 bits", false},
		{"unsupported algorithm", download(t, badAlg), nil, nil, time.Time{}, "unsupported algorithm", false},
		{"sealed garbage", download(t, entry(t, aead, "1A", []byte("not a certificate"))), nil, nil, time.Time{}, "no PEM CERTIFICATE", false},
		{"not JSON", []byte("<html>"), nil, nil, time.Time{}, "not the certificate JSON", false},
		{"empty list", []byte(`{"data":[]}`), nil, nil, time.Time{}, "lists no certificates", false},
		{"chains to roots", download(t, entry(t, aead, "6A", chained)), roots, []string{"6A"}, time.Time{}, "", false},
		{"does not chain", download(t, entry(t, aead, "1A", valid)), otherRoots, nil, time.Time{}, "does not chain", false},
		{"self-signed root itself", download(t, entry(t, aead, "5A", rootPEM)), roots, []string{"5A"}, time.Time{}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDownload(tc.body, aead, now, tc.roots)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseDownload = %v; want an error containing %q", err, tc.wantErr)
				}
				if tc.decrypt != errors.Is(err, ErrDecrypt) {
					t.Errorf("ParseDownload = %v; ErrDecrypt %v, want %v", err, !tc.decrypt, tc.decrypt)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDownload = %v", err)
			}
			var serials []string
			for _, c := range got {
				serials = append(serials, CertSerial(c.X509))
				if c.Key == nil || c.Key.N.Cmp(c.X509.PublicKey.(*rsa.PublicKey).N) != 0 {
					t.Errorf("certificate %s: Key is not the certificate's", CertSerial(c.X509))
				}
			}
			if strings.Join(serials, ",") != strings.Join(tc.serials, ",") {
				t.Errorf("ParseDownload kept %v; want %v", serials, tc.serials)
			}
			if !tc.notAfter.IsZero() && !got[0].NotAfter.Equal(tc.notAfter) {
				t.Errorf("NotAfter = %v; want %v (from expire_time)", got[0].NotAfter, tc.notAfter)
			}
		})
	}
}
