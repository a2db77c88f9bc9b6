package openssl_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/openssl"
	"github.com/wxpaykit/wechatpay/profitsharing"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// childLibrary, when set in the environment, makes this test binary load
// that library and report the error instead of running the tests: the
// first load decides for the life of a process, so a wrong library path
// is tested in a process of its own.
const childLibrary = "WECHATPAY_OPENSSL_TEST_LIBRARY"

func TestMain(m *testing.M) {
	if lib := os.Getenv(childLibrary); lib != "" {
		err := openssl.Load(lib)
		fmt.Printf("load error: %v\n", err)
		if _, err := openssl.NewSigner(officialKey()); err != nil {
			fmt.Printf("signer error: %v\n", err)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func officialKey() *rsa.PrivateKey {
	key, err := wechatpay.LoadPrivateKeyFile("../testdata/official_key.pem")
	if err != nil {
		panic(err)
	}
	return key
}

type vectorFile struct {
	MerchantID string `json:"merchant_id"`
	Serial     string `json:"serial"`
	Timestamp  int64  `json:"timestamp"`
	Nonce      string `json:"nonce"`
	Cases      []struct {
		Name, Method, URL, Body, Signature string
	} `json:"cases"`
}

// TestOfficialVectors signs WeChat Pay's official vectors through
// libcrypto: the Authorization is byte for byte the one crypto/rsa gives,
// and the signature the one WeChat Pay's documentation shows.
func TestOfficialVectors(t *testing.T) {
	b, err := os.ReadFile("../testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	goKey := officialKey()
	osslKey, err := openssl.NewSigner(goKey)
	if err != nil {
		t.Fatal(err)
	}
	viaGo := &wechatpay.Signer{MerchantID: v.MerchantID, CertificateSerial: v.Serial, Key: goKey}
	viaOpenSSL := &wechatpay.Signer{MerchantID: v.MerchantID, CertificateSerial: v.Serial, Key: osslKey}
	for _, tc := range v.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			want, err := viaGo.AuthorizationAt(tc.Method, tc.URL, []byte(tc.Body), v.Timestamp, v.Nonce)
			if err != nil {
				t.Fatal(err)
			}
			got, err := viaOpenSSL.AuthorizationAt(tc.Method, tc.URL, []byte(tc.Body), v.Timestamp, v.Nonce)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("Authorization through OpenSSL = %s;\nthrough crypto/rsa %s", got, want)
			}
			if !strings.Contains(got, `signature="`+tc.Signature+`"`) {
				t.Errorf("Authorization through OpenSSL = %s; want the official signature %s", got, tc.Signature)
			}
		})
	}
	// And on digests other than the vectors': the same bytes as crypto/rsa.
	for i := range 20 {
		d := sha256.Sum256([]byte(fmt.Sprintf("message %d", i)))
		want, err := rsa.SignPKCS1v15(nil, goKey, crypto.SHA256, d[:])
		if err != nil {
			t.Fatal(err)
		}
		got, err := osslKey.Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("signature %d through OpenSSL differs from crypto/rsa's", i)
		}
	}
	if pub, ok := osslKey.Public().(*rsa.PublicKey); !ok || !pub.Equal(&goKey.PublicKey) {
		t.Errorf("Public() = %T, not the key's public key", osslKey.Public())
	}
}

// TestDecryptOAEP decrypts fields encrypted by Go's crypto/rsa, through
// the core's DecryptOAEP as the call path uses it.
func TestDecryptOAEP(t *testing.T) {
	goKey := officialKey()
	key, err := openssl.NewSigner(goKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, plain := range []string{"张三", "13800138000", "", strings.Repeat("x", 214)} {
		ct, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, &goKey.PublicKey, []byte(plain), nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := wechatpay.DecryptOAEP(key, base64.StdEncoding.EncodeToString(ct))
		if err != nil {
			t.Fatalf("DecryptOAEP(%q) = %v", plain, err)
		}
		if string(got) != plain {
			t.Errorf("DecryptOAEP = %q; want %q", got, plain)
		}
		ct[len(ct)/2] ^= 1
		if _, err := key.Decrypt(nil, ct, &rsa.OAEPOptions{Hash: crypto.SHA1}); err == nil {
			t.Errorf("Decrypt of an altered ciphertext succeeded")
		} else if strings.Contains(err.Error(), plain) && plain != "" {
			t.Errorf("error %q shows the plaintext", err)
		}
	}
}

// TestRefused: any scheme but WeChat Pay's is refused with an error that
// names it, and nothing is signed or decrypted.
func TestRefused(t *testing.T) {
	key, err := openssl.NewSigner(officialKey())
	if err != nil {
		t.Fatal(err)
	}
	d1 := sha1.Sum([]byte("x"))
	d256 := sha256.Sum256([]byte("x"))
	signs := []struct {
		name   string
		digest []byte
		opts   crypto.SignerOpts
		want   string
	}{
		{"SHA-1", d1[:], crypto.SHA1, "hash SHA-1 refused"},
		{"SHA-512", make([]byte, 64), crypto.SHA512, "hash SHA-512 refused"},
		{"PSS", d256[:], &rsa.PSSOptions{Hash: crypto.SHA256}, "RSA-PSS refused"},
		{"no hash", d256[:], crypto.Hash(0), "hash none refused"},
		{"short digest", d256[:20], crypto.SHA256, "digest is 20 bytes"},
	}
	for _, tc := range signs {
		sig, err := key.Sign(rand.Reader, tc.digest, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) || sig != nil {
			t.Errorf("Sign(%s) = %x, %v; want an error containing %q", tc.name, sig, err, tc.want)
		}
	}
	decrypts := []struct {
		name string
		opts crypto.DecrypterOpts
		want string
	}{
		{"OAEP SHA-256", &rsa.OAEPOptions{Hash: crypto.SHA256}, "RSA-OAEP with SHA-256"},
		{"OAEP MGF1 SHA-256", &rsa.OAEPOptions{Hash: crypto.SHA1, MGFHash: crypto.SHA256}, "MGF1 SHA-256"},
		{"PKCS#1 v1.5", &rsa.PKCS1v15DecryptOptions{}, "*rsa.PKCS1v15DecryptOptions refused"},
		{"nil", nil, "<nil> refused"},
	}
	for _, tc := range decrypts {
		pt, err := key.Decrypt(rand.Reader, make([]byte, 256), tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) || pt != nil {
			t.Errorf("Decrypt(%s) = %x, %v; want an error containing %q", tc.name, pt, err, tc.want)
		}
	}
	pub := &officialKey().PublicKey
	if err := openssl.VerifyPKCS1v15(pub, crypto.SHA1, d1[:], make([]byte, 256)); err == nil || !strings.Contains(err.Error(), "hash SHA-1 refused") {
		t.Errorf("VerifyPKCS1v15(SHA-1) = %v; want the hash refused", err)
	}
}

// TestVerify: the same verdicts as crypto/rsa, on good signatures and
// altered ones, from many goroutines (run with -race).
func TestVerify(t *testing.T) {
	goKey := officialKey()
	pub := &goKey.PublicKey
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				d := sha256.Sum256([]byte(fmt.Sprintf("body %d %d", g, i)))
				sig, err := rsa.SignPKCS1v15(nil, goKey, crypto.SHA256, d[:])
				if err != nil {
					t.Error(err)
					return
				}
				if err := openssl.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig); err != nil {
					t.Errorf("VerifyPKCS1v15 of a good signature = %v", err)
				}
				bad := bytes.Clone(sig)
				bad[i] ^= 0x80
				if err := openssl.VerifyPKCS1v15(pub, crypto.SHA256, d[:], bad); !errors.Is(err, rsa.ErrVerification) {
					t.Errorf("VerifyPKCS1v15 of an altered signature = %v; want rsa.ErrVerification", err)
				}
				other := sha256.Sum256([]byte("another body"))
				if err := openssl.VerifyPKCS1v15(pub, crypto.SHA256, other[:], sig); !errors.Is(err, rsa.ErrVerification) {
					t.Errorf("VerifyPKCS1v15 of another digest = %v; want rsa.ErrVerification", err)
				}
				if err := openssl.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig[:len(sig)-1]); !errors.Is(err, rsa.ErrVerification) {
					t.Errorf("VerifyPKCS1v15 of a short signature = %v; want rsa.ErrVerification", err)
				}
			}
		})
	}
	wg.Wait()
}

// TestSecretsNotPrinted: the signer prints no key material.
func TestSecretsNotPrinted(t *testing.T) {
	goKey := officialKey()
	key, err := openssl.NewSigner(goKey)
	if err != nil {
		t.Fatal(err)
	}
	d := goKey.D.String()[:12]
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		s := fmt.Sprintf(format, key)
		if strings.Contains(s, d) || !strings.Contains(s, "redacted") {
			t.Errorf("Sprintf(%q, signer) = %q; want it redacted", format, s)
		}
	}
}

// TestLibraryNotFound: when libcrypto cannot be loaded, the error names
// the library and the Debian package that provides it, and NewSigner
// returns it too. It runs in a child process (see TestMain).
func TestLibraryNotFound(t *testing.T) {
	const lib = "/nonexistent/libcrypto.so.3"
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childLibrary+"="+lib)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, want := range []string{
		`load error: wechatpay/openssl: cannot load libcrypto "` + lib + `"`,
		"package libssl3",
		"No such file or directory",
		`signer error: wechatpay/openssl: cannot load libcrypto "` + lib + `"`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("child output:\n%s\nwant it to contain %q", out, want)
		}
	}
}

// countingVerify is openssl.VerifyPKCS1v15, counted.
func countingVerify(n *atomic.Int64) func(*rsa.PublicKey, crypto.Hash, []byte, []byte) error {
	return func(pub *rsa.PublicKey, h crypto.Hash, hashed, sig []byte) error {
		n.Add(1)
		return openssl.VerifyPKCS1v15(pub, h, hashed, sig)
	}
}

// TestSimulator: a signed call through the Transport and a callback
// through the middleware, against the simulator, with the request signed
// and every signature verified through libcrypto.
func TestSimulator(t *testing.T) {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	var verified atomic.Int64
	store, err := wechatpay.NewStore(wechatpay.StoreOptions{VerifyPKCS1v15: countingVerify(&verified)})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cfg := srv.Config()
	cfg.Store = store
	key, err := openssl.NewSigner(cfg.PrivateKey.(*rsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	cfg.PrivateKey = key
	tr, err := wechatpay.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Handle("GET /v3/pay/transactions/id/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"transaction_id":%q,"trade_state":"SUCCESS"}`, r.PathValue("id"))
	}))

	// The signed call: the simulator checks the signature libcrypto made;
	// the Transport verifies the answer through libcrypto.
	client := &http.Client{Transport: tr}
	resp, err := client.Get(cfg.BaseURL + "/v3/pay/transactions/id/4200000001?mchid=" + cfg.MerchantID)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !wechatpay.IsVerified(resp) || !strings.Contains(string(body), "4200000001") {
		t.Fatalf("GET = %d verified=%v %s", resp.StatusCode, wechatpay.IsVerified(resp), body)
	}
	if verified.Load() == 0 {
		t.Fatal("the response was not verified through the Store's VerifyPKCS1v15")
	}

	// The callback: the middleware verifies it with the same Store.
	before := verified.Load()
	var got atomic.Value
	merchant := httptest.NewServer(middleware.Notifications(middleware.Config{
		Keys: store, MerchantID: cfg.MerchantID, APIv3Key: cfg.APIv3Key,
	})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := middleware.NotificationFrom(r.Context())
		got.Store(n.EventType)
	})))
	defer merchant.Close()
	resp, err = srv.Notify(context.Background(), merchant.URL, "TRANSACTION.SUCCESS", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || got.Load() != "TRANSACTION.SUCCESS" {
		t.Fatalf("callback answered %d, handler saw %v", resp.StatusCode, got.Load())
	}
	if verified.Load() != before+1 {
		t.Errorf("callback verifications through libcrypto = %d; want 1", verified.Load()-before)
	}

	// A forged callback signature is refused on the same path.
	before = verified.Load()
	resp, err = srv.Notify(context.Background(), merchant.URL, "TRANSACTION.SUCCESS", nil, wechatpaytest.NotifyTamperBody())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || verified.Load() != before+1 {
		t.Errorf("tampered callback answered %d after %d verifications; want 401 after 1", resp.StatusCode, verified.Load()-before)
	}
}

// TestSensitiveFieldsThroughTheCallPath: a receiver's name goes out
// encrypted by the Transport and comes back encrypted for the merchant,
// which the call path decrypts with the merchant key held by libcrypto
// (the Signer's Decrypt).
func TestSensitiveFieldsThroughTheCallPath(t *testing.T) {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	cfg := srv.Config()
	key, err := openssl.NewSigner(cfg.PrivateKey.(*rsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	cfg.PrivateKey = key
	tr, err := wechatpay.NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ps := &profitsharing.Client{HTTP: &http.Client{Transport: tr}, BaseURL: cfg.BaseURL, MerchantID: cfg.MerchantID}
	store := srv.AddMerchant()
	added, err := ps.AddReceiver(context.Background(), profitsharing.Receiver{Type: profitsharing.MerchantID, Account: store.ID,
		Name: "深圳示例门店有限公司", RelationType: "STORE"})
	if err != nil {
		t.Fatal(err)
	}
	if added.Name != "深圳示例门店有限公司" {
		t.Errorf("decrypted name = %q; want the name back", added.Name)
	}
}

// TestInvalidKeyRefused: a key whose parts do not belong together is
// refused by NewSigner rather than signing wrongly.
func TestInvalidKeyRefused(t *testing.T) {
	good := officialKey()
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	bad := *good
	bad.D = other.D // the wrong private exponent
	if s, err := openssl.NewSigner(&bad); err == nil || !strings.Contains(err.Error(), "not valid") {
		t.Errorf("NewSigner(mismatched key) = %v, %v; want it refused", s, err)
	}
	if _, err := openssl.NewSigner(nil); err == nil {
		t.Error("NewSigner(nil) succeeded")
	}
}
