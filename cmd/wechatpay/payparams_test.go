package main

import (
	"encoding/json"
	"testing"

	"github.com/wxpaykit/wechatpay/payments"
)

// The official vectors of docs/protocol.md §9.1 (b) and (c), through the command.
func TestPayparamsOfficialVectors(t *testing.T) {
	v := loadVectors(t)
	base := []string{"payparams", "-mchid", v.MerchantID, "-serial", v.Serial, "-key", "../../testdata/official_key.pem",
		"-appid", "wx2421b1c4370ec43b", "-prepay-id", "wx201410272009395522657a690389285100",
		"-timestamp", "1554208460", "-nonce", v.Nonce}

	r := runApp(t, nil, "", append(base, "-kind", "jsapi")...)
	wantCode(t, r, exitOK)
	var j payments.JSAPIParams
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil {
		t.Fatalf("jsapi output is not the JSON of the parameters: %v\n%s", err, r)
	}
	want := payments.JSAPIParams{AppID: "wx2421b1c4370ec43b", TimeStamp: "1554208460", NonceStr: v.Nonce,
		Package: "prepay_id=wx201410272009395522657a690389285100", SignType: "RSA",
		PaySign: "mI35pfNEQV6777ke/1T+LJLQDNTm7yeoUJH+j/adPGhmCCi0PbgkvYQTRcXH0uibcLVtvFLdGLpmoYO9FV6lBBsTAjuhh5YOvQi0e2g3e0yytitiNET9FEuqM0pjnKfRW4K6LIZDdbWJv9KhZUx3DrJa5TL7OJ7VdADVivxVySIlPVKjGwuCXzuXSJes0UcILgWQUMyha5/3nYofuHtS7r+KYyMuxD+oJ9VM1Qdxk4UIG59CP5Y3wtYIFybyF3bdu1caHTRRX+DLyMXyYA/IrTmiW01c4RPjpHBX5Dk1sZyY1zVsWNsvMHr2e1NTWtBxKJ+qk5N61J7caYoepHFaxw=="}
	if j != want {
		t.Errorf("jsapi = %+v\nwant   %+v", j, want)
	}

	r = runApp(t, nil, "", append(base, "-kind", "app")...)
	wantCode(t, r, exitOK, `"partnerid": "1900007291"`, `"package": "Sign=WXPay"`)
	var a payments.AppParams
	if err := json.Unmarshal([]byte(r.stdout), &a); err != nil {
		t.Fatalf("app output is not JSON: %v\n%s", err, r)
	}
	if a.Signature != "gXx9KhTP6IooKV1SuG3OCGlBIgZbKtubCZvnau6khw1iffvNT28IzLbKmztq2xA/RCNbZa1XOsoiuVmAEeTZQicWfhv4P+O4oBRIrx0X9f3cnWFkMBU9alTWs0nyQ1N9fcILOTe0f4kxOhVh+/Xhn5hOiUK7Sz3XA1mcpa3R2NCWf/e+0ow/RDf15iTymOHgDrEkT/gedg/3E0iXfDX3mFicSZhrHESZDOTXcl9RzELREBUFznd/o2NQM99WcL86m23HY0cTy+QGWU4QDmNrbQ9ihmLW71qPb0Cx/d7EQvw/Kyx0A6s64ZQp3hHdcmiRcLnjVXrKCk7LShaCK+lS3Q==" {
		t.Errorf("app sign = %s; want the official one", a.Signature)
	}
	if r.stderr != "" {
		t.Errorf("stderr = %q; want nothing", r.stderr)
	}
}

func TestPayparamsSandboxAndMistakes(t *testing.T) {
	// With -sandbox: the sandbox merchant, now, a fresh nonce; the
	// parameters verify with the sandbox merchant's public key is covered
	// in package payments, here the shape.
	r := runApp(t, nil, "", "payparams", "-sandbox", "-appid", "wx1", "-prepay-id", "wx2")
	wantCode(t, r, exitOK, `"appId": "wx1"`, `"package": "prepay_id=wx2"`, `"signType": "RSA"`, `"paySign": "`)

	wantCode(t, runApp(t, nil, "", "payparams", "-sandbox", "-kind", "h5", "-appid", "a", "-prepay-id", "p"), exitUsage, "-kind is \"h5\"; want jsapi or app")
	wantCode(t, runApp(t, nil, "", "payparams", "-sandbox", "-appid", "a"), exitUsage, "-appid and -prepay-id are required")
	wantCode(t, runApp(t, nil, "", "payparams", "-sandbox", "-appid", "a", "-prepay-id", "p", "-nonce", "0123456789012345678901234567890123"), exitUsage, "at most 32")
	// Missing credentials are named, as for every command.
	wantCode(t, runApp(t, nil, "", "payparams", "-appid", "a", "-prepay-id", "p"), exitUsage, "merchant private key is missing")
}
