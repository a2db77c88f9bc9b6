package payments

import (
	"crypto/rsa"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/wxpaykit/wechatpay"
)

func officialKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := wechatpay.LoadPrivateKeyFile("../testdata/official_key.pem")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// docs/protocol.md §9.1 (b) and (c): WeChat Pay's published paySign and App sign
// for the official merchant key.
const (
	officialJSAPISign = "mI35pfNEQV6777ke/1T+LJLQDNTm7yeoUJH+j/adPGhmCCi0PbgkvYQTRcXH0uibcLVtvFLdGLpmoYO9FV6lBBsTAjuhh5YOvQi0e2g3e0yytitiNET9FEuqM0pjnKfRW4K6LIZDdbWJv9KhZUx3DrJa5TL7OJ7VdADVivxVySIlPVKjGwuCXzuXSJes0UcILgWQUMyha5/3nYofuHtS7r+KYyMuxD+oJ9VM1Qdxk4UIG59CP5Y3wtYIFybyF3bdu1caHTRRX+DLyMXyYA/IrTmiW01c4RPjpHBX5Dk1sZyY1zVsWNsvMHr2e1NTWtBxKJ+qk5N61J7caYoepHFaxw=="
	officialAppSign   = "gXx9KhTP6IooKV1SuG3OCGlBIgZbKtubCZvnau6khw1iffvNT28IzLbKmztq2xA/RCNbZa1XOsoiuVmAEeTZQicWfhv4P+O4oBRIrx0X9f3cnWFkMBU9alTWs0nyQ1N9fcILOTe0f4kxOhVh+/Xhn5hOiUK7Sz3XA1mcpa3R2NCWf/e+0ow/RDf15iTymOHgDrEkT/gedg/3E0iXfDX3mFicSZhrHESZDOTXcl9RzELREBUFznd/o2NQM99WcL86m23HY0cTy+QGWU4QDmNrbQ9ihmLW71qPb0Cx/d7EQvw/Kyx0A6s64ZQp3hHdcmiRcLnjVXrKCk7LShaCK+lS3Q=="
	officialAppID     = "wx2421b1c4370ec43b"
	officialPrepayID  = "wx201410272009395522657a690389285100"
	officialTimestamp = "1554208460"
	officialNonce     = "593BEC0C930BF1AFEB40B4A08C8FB242"
)

func TestJSAPIParamsOfficialVector(t *testing.T) {
	key := officialKey(t)
	p := &JSAPIParams{AppID: officialAppID, TimeStamp: officialTimestamp, NonceStr: officialNonce, Package: "prepay_id=" + officialPrepayID}
	if err := p.Sign(key); err != nil {
		t.Fatal(err)
	}
	if p.PaySign != officialJSAPISign {
		t.Errorf("PaySign = %s; want the official %s", p.PaySign, officialJSAPISign)
	}
	if p.SignType != "RSA" {
		t.Errorf("SignType = %q; want RSA", p.SignType)
	}
	if err := p.Verify(&key.PublicKey); err != nil {
		t.Errorf("Verify: %v", err)
	}
	// The JSON is what WeixinJSBridge / wx.requestPayment take, names and all.
	b, _ := json.Marshal(p)
	want := `{"appId":"wx2421b1c4370ec43b","timeStamp":"1554208460","nonceStr":"593BEC0C930BF1AFEB40B4A08C8FB242","package":"prepay_id=wx201410272009395522657a690389285100","signType":"RSA","paySign":"` + officialJSAPISign + `"}`
	if string(b) != want {
		t.Errorf("JSON = %s\nwant   %s", b, want)
	}
}

func TestAppParamsOfficialVector(t *testing.T) {
	key := officialKey(t)
	p := &AppParams{AppID: officialAppID, PartnerID: "1900007291", PrepayID: officialPrepayID, TimeStamp: officialTimestamp, NonceStr: officialNonce}
	if err := p.Sign(key); err != nil {
		t.Fatal(err)
	}
	if p.Signature != officialAppSign {
		t.Errorf("Signature = %s; want the official %s", p.Signature, officialAppSign)
	}
	if p.Package != "Sign=WXPay" {
		t.Errorf("Package = %q; want Sign=WXPay", p.Package)
	}
	b, _ := json.Marshal(p)
	want := `{"appid":"wx2421b1c4370ec43b","partnerid":"1900007291","prepayid":"wx201410272009395522657a690389285100","package":"Sign=WXPay","noncestr":"593BEC0C930BF1AFEB40B4A08C8FB242","timestamp":"1554208460","sign":"` + officialAppSign + `"}`
	if string(b) != want {
		t.Errorf("JSON = %s\nwant   %s", b, want)
	}
}

// randomText returns 1..40 runes from a mix of ASCII, CJK and symbols,
// never a line break.
func randomText(r *rand.Rand) string {
	alphabet := []rune("abcXYZ0189_-|*@=+/ 形象店深圳支付?&%.")
	n := 1 + r.IntN(40)
	var b strings.Builder
	for range n {
		b.WriteRune(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

// TestFrontParamsVerifyProperty: for random inputs the parameters verify
// with the merchant's public key, and changing any signed field makes
// them fail.
func TestFrontParamsVerifyProperty(t *testing.T) {
	key := officialKey(t)
	pub := &key.PublicKey
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		appID, prepayID := randomText(r), randomText(r)
		j, err := NewJSAPIParams(key, appID, prepayID)
		if err != nil {
			t.Fatalf("NewJSAPIParams(%q, %q): %v", appID, prepayID, err)
		}
		if err := j.Verify(pub); err != nil {
			t.Fatalf("case %d: JSAPI params do not verify: %v", i, err)
		}
		if _, err := strconv.ParseInt(j.TimeStamp, 10, 64); err != nil || len(j.TimeStamp) != 10 {
			t.Fatalf("timeStamp %q is not 10-digit Unix seconds", j.TimeStamp)
		}
		tampered := *j
		tampered.Package += "x"
		if err := tampered.Verify(pub); !errors.Is(err, wechatpay.ErrBadSignature) {
			t.Fatalf("case %d: tampered package verified: %v", i, err)
		}

		partner := strconv.Itoa(1000000000 + r.IntN(1000000000))
		a, err := NewAppParams(key, appID, partner, prepayID)
		if err != nil {
			t.Fatalf("NewAppParams: %v", err)
		}
		if err := a.Verify(pub); err != nil {
			t.Fatalf("case %d: App params do not verify: %v", i, err)
		}
		tamperedApp := *a
		tamperedApp.PrepayID += "x"
		if err := tamperedApp.Verify(pub); !errors.Is(err, wechatpay.ErrBadSignature) {
			t.Fatalf("case %d: tampered prepayid verified: %v", i, err)
		}
	}
}

func TestFrontParamsRefuseBadInput(t *testing.T) {
	key := officialKey(t)
	tests := []struct {
		name string
		p    JSAPIParams
		want string
	}{
		{"empty appId", JSAPIParams{Package: "prepay_id=x"}, "appId is empty"},
		{"line break in appId", JSAPIParams{AppID: "wx1\nprepay_id=evil", Package: "prepay_id=x"}, "appId contains a line break"},
		{"bare prepay_id as package", JSAPIParams{AppID: "wx1", Package: "wx201410"}, "want prepay_id="},
		{"empty prepay_id", JSAPIParams{AppID: "wx1", Package: "prepay_id="}, "want prepay_id="},
		{"timeStamp not a number", JSAPIParams{AppID: "wx1", Package: "prepay_id=x", TimeStamp: "12:00"}, "not Unix seconds"},
		{"nonce too long", JSAPIParams{AppID: "wx1", Package: "prepay_id=x", NonceStr: strings.Repeat("A", 33)}, "at most 32"},
		{"signType MD5", JSAPIParams{AppID: "wx1", Package: "prepay_id=x", SignType: "MD5"}, "want RSA"},
	}
	for _, tc := range tests {
		p := tc.p
		err := p.Sign(key)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Sign = %v; want an error containing %q", tc.name, err, tc.want)
		}
		if p.PaySign != "" {
			t.Errorf("%s: PaySign set despite the error", tc.name)
		}
	}
	if _, err := NewAppParams(key, "wx1", "", "wx2014"); err == nil || !strings.Contains(err.Error(), "partnerid") {
		t.Errorf("NewAppParams without partnerid = %v; want an error naming partnerid", err)
	}
	if _, err := NewAppParams(key, "wx1", "1900007291", "a\nb"); err == nil || !strings.Contains(err.Error(), "prepayid contains a line break") {
		t.Errorf("NewAppParams with a line break = %v", err)
	}
}
