package wechatpay

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

type vectorFile struct {
	MerchantID string `json:"merchant_id"`
	Serial     string `json:"serial"`
	Timestamp  int64  `json:"timestamp"`
	Nonce      string `json:"nonce"`
	Cases      []struct {
		Name, Method, URL, Body, Signature string
	} `json:"cases"`
}

func loadVectors(t testing.TB) vectorFile {
	t.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOfficialVectors(t *testing.T) {
	key, err := LoadPrivateKeyFile("testdata/official_key.pem")
	if err != nil {
		t.Fatal(err)
	}
	v := loadVectors(t)
	s := &Signer{MerchantID: v.MerchantID, CertificateSerial: v.Serial, Key: key}
	for _, tc := range v.Cases {
		t.Run(tc.Name, func(t *testing.T) {
			got, err := wire.Sign(key, wire.RequestMessage(tc.Method, tc.URL, v.Timestamp, v.Nonce, []byte(tc.Body)))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.Signature {
				t.Errorf("signature = %s; want %s", got, tc.Signature)
			}
			auth, err := s.AuthorizationAt(tc.Method, tc.URL, []byte(tc.Body), v.Timestamp, v.Nonce)
			if err != nil {
				t.Fatal(err)
			}
			p, err := wire.ParseAuthorization(auth)
			if err != nil {
				t.Fatalf("wire.ParseAuthorization(%s) = %v", auth, err)
			}
			want := wire.AuthParams{MerchantID: v.MerchantID, Nonce: v.Nonce, Timestamp: "1554208460", Serial: v.Serial, Signature: tc.Signature}
			if p != want {
				t.Errorf("ParseAuthorization = %+v; want %+v", p, want)
			}
			if !strings.HasPrefix(auth, wire.SchemeRSA+` mchid="1900007291",`) || strings.Contains(auth, ", ") {
				t.Errorf("Authorization = %q: want scheme, then pairs joined by commas without spaces", auth)
			}
			if err := wire.Verify(&key.PublicKey, wire.RequestMessage(tc.Method, tc.URL, v.Timestamp, v.Nonce, []byte(tc.Body)), got); err != nil {
				t.Errorf("VerifyMessage = %v", err)
			}
		})
	}
}
