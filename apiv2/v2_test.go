package apiv2_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/apiv2"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

func TestSignV2OfficialVectors(t *testing.T) {
	b, err := os.ReadFile("testdata/v2sign.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Params          map[string]string
		Key, MD5        string
		HMAC            string `json:"hmac_sha256"`
		WrongHMACPrefix string `json:"hmac_over_string_a_only_wrong"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ signType, want string }{
		{apiv2.SignTypeMD5, v.MD5},
		{apiv2.SignTypeHMACSHA256, v.HMAC},
		{"", v.HMAC},
	} {
		got, err := apiv2.Sign(v.Params, v.Key, tc.signType)
		if err != nil || got != tc.want {
			t.Errorf("SignV2(%q) = %s, %v; want %s", tc.signType, got, err, tc.want)
		}
		if strings.HasPrefix(got, v.WrongHMACPrefix) {
			t.Errorf("SignV2(%q) computed the HMAC over stringA alone", tc.signType)
		}
	}
	// sign and empty values are not signed; unknown fields are.
	p := map[string]string{"sign": "X", "attach": ""}
	for k, val := range v.Params {
		p[k] = val
	}
	if got, _ := apiv2.Sign(p, v.Key, apiv2.SignTypeMD5); got != v.MD5 {
		t.Errorf("with sign and an empty field: %s; want %s", got, v.MD5)
	}
	p["extra"] = "1"
	if got, _ := apiv2.Sign(p, v.Key, apiv2.SignTypeMD5); got == v.MD5 {
		t.Error("an extra field did not change the sign")
	}
	if _, err := apiv2.Sign(v.Params, v.Key, "SHA1"); err == nil {
		t.Error("unknown sign type accepted")
	}
	if _, err := apiv2.Sign(v.Params, "", ""); err == nil {
		t.Error("empty key accepted")
	}
	p = map[string]string{"sign": strings.ToLower(v.MD5)}
	for k, val := range v.Params {
		p[k] = val
	}
	if err := apiv2.Verify(p, v.Key, apiv2.SignTypeMD5); err != nil {
		t.Errorf("VerifyV2 of the official sign: %v", err)
	}
	if err := apiv2.Verify(p, v.Key, apiv2.SignTypeHMACSHA256); !errors.Is(err, wechatpay.ErrBadSignature) {
		t.Errorf("VerifyV2 with the other sign type: %v; want ErrBadSignature", err)
	}
	delete(p, "sign")
	if err := apiv2.Verify(p, v.Key, apiv2.SignTypeMD5); !errors.Is(err, wechatpay.ErrMissingSignature) {
		t.Errorf("VerifyV2 without sign: %v; want ErrMissingSignature", err)
	}
}

func TestParseV2XML(t *testing.T) {
	good := []struct {
		in   string
		want map[string]string
	}{
		{`<xml><a>1</a><b><![CDATA[x<y&z]]></b></xml>`, map[string]string{"a": "1", "b": "x<y&z"}},
		{"<?xml version=\"1.0\"?>\n<xml>\n <a>&lt;&#x4F60;</a>\n <!-- c -->\n</xml>\n", map[string]string{"a": "<你"}},
		{`<xml/>`, map[string]string{}},
	}
	for _, tc := range good {
		got, err := apiv2.ParseXML([]byte(tc.in))
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ParseV2XML(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	bad := map[string]string{
		"doctype":    `<!DOCTYPE xml><xml><a>1</a></xml>`,
		"entity":     "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e \"boom\">]><xml><a>&e;</a></xml>",
		"external":   `<!DOCTYPE xml SYSTEM "file:///etc/passwd"><xml/>`,
		"undeclared": `<xml><a>&e;</a></xml>`,
		"nested":     `<xml><a><b>1</b></a></xml>`,
		"duplicate":  `<xml><a>1</a><a>2</a></xml>`,
		"root":       `<root><a>1</a></root>`,
		"two roots":  `<xml/><xml/>`,
		"text":       `<xml>hello<a>1</a></xml>`,
		"unclosed":   `<xml><a>1</a>`,
		"empty":      ``,
		"json":       `{"a":1}`,
		"namespace":  `<xml xmlns:p="u"><p:a>1</p:a></xml>`,
	}
	for name, in := range bad {
		if got, err := apiv2.ParseXML([]byte(in)); !errors.Is(err, apiv2.ErrXML) {
			t.Errorf("%s: ParseV2XML(%q) = %v, %v; want ErrV2XML", name, in, got, err)
		}
	}
	many := "<xml>"
	for i := range 600 {
		many += fmt.Sprintf("<f%d>x</f%d>", i, i)
	}
	if _, err := apiv2.ParseXML([]byte(many + "</xml>")); !errors.Is(err, apiv2.ErrXML) {
		t.Errorf("600 fields: %v; want ErrV2XML", err)
	}
	m := map[string]string{"b": "<&>", "a": "中文"}
	back, err := apiv2.ParseXML(apiv2.EncodeXML(m))
	if err != nil || fmt.Sprint(back) != fmt.Sprint(m) {
		t.Errorf("EncodeV2XML round trip = %v, %v; want %v", back, err, m)
	}
}

// newV2Client returns a client with a V2Transport for the sandbox's
// default merchant.
func newV2Client(srv *wechatpaytest.Server, signType string) *http.Client {
	m := srv.Merchant()
	return &http.Client{Transport: &apiv2.Transport{MerchantID: m.ID, Key: m.APIv2Key, SignType: signType, Base: srv.Config().Base, BaseURL: srv.URL}}
}

func TestV2TransportAgainstSandbox(t *testing.T) {
	srv := newSandbox(t)
	m := srv.Merchant()
	var seen atomic.Value
	srv.HandleV2("/pay/orderquery", func(id string, f map[string]string) map[string]string {
		seen.Store(f)
		return map[string]string{"result_code": "SUCCESS", "out_trade_no": f["out_trade_no"], "trade_state": "SUCCESS", "attach": "<&>"}
	})
	for _, tc := range []struct {
		name, signType, body, wantSignType string
	}{
		{"default HMAC", "", `<xml><appid>wx1</appid><out_trade_no>T1</out_trade_no></xml>`, "HMAC-SHA256"},
		{"body names MD5", "", `<xml><appid>wx1</appid><out_trade_no>T1</out_trade_no><sign_type>MD5</sign_type></xml>`, "MD5"},
		{"transport MD5", apiv2.SignTypeMD5, `<xml><appid>wx1</appid><out_trade_no>T1</out_trade_no></xml>`, ""},
		{"stale sign replaced", "", `<xml><out_trade_no>T1</out_trade_no><sign>AAAA</sign><nonce_str>n1</nonce_str></xml>`, "HMAC-SHA256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := newV2Client(srv, tc.signType)
			body := &countingBody{Reader: strings.NewReader(tc.body)}
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/pay/orderquery", body)
			before := req.Clone(context.Background())
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if !wechatpay.IsVerified(resp) {
				t.Error("IsVerified = false for a SUCCESS answer")
			}
			if n := body.closes.Load(); n != 1 {
				t.Errorf("request body closed %d times; want 1", n)
			}
			if fmt.Sprint(req.Header) != fmt.Sprint(before.Header) || req.ContentLength != before.ContentLength {
				t.Error("caller's request was modified")
			}
			b, _ := io.ReadAll(resp.Body)
			answer, err := apiv2.ParseXML(b)
			if err != nil || answer["trade_state"] != "SUCCESS" || answer["attach"] != "<&>" {
				t.Errorf("answer = %v, %v", answer, err)
			}
			f := seen.Load().(map[string]string)
			if f["mch_id"] != m.ID || f["sign_type"] != tc.wantSignType || len(f["nonce_str"]) == 0 || f["out_trade_no"] != "T1" || f["sign"] == "AAAA" {
				t.Errorf("sandbox saw %v", f)
			}
			if tc.name == "stale sign replaced" && f["nonce_str"] != "n1" {
				t.Errorf("caller's nonce_str replaced: %q", f["nonce_str"])
			}
		})
	}

	t.Run("wrong key refused by sandbox", func(t *testing.T) {
		client := &http.Client{Transport: &apiv2.Transport{MerchantID: m.ID, Key: strings.Repeat("k", 32), Base: srv.Config().Base, BaseURL: srv.URL}}
		_, err := apiv2.Post(context.Background(), client, srv.URL+"/pay/orderquery", map[string]string{"out_trade_no": "T"})
		var v2e *apiv2.Error
		if !errors.As(err, &v2e) || v2e.ReturnCode != "FAIL" || !strings.Contains(err.Error(), "签名错误") {
			t.Errorf("PostV2 with a wrong key: %v; want return_code FAIL 签名错误", err)
		}
	})
	t.Run("bad request XML refused before sending", func(t *testing.T) {
		hits := srv.PathRequests("/pay/orderquery")
		body := &countingBody{Reader: strings.NewReader(`<xml><a><b>1</b></a></xml>`)}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/pay/orderquery", body)
		if _, err := newV2Client(srv, "").Do(req); !errors.Is(err, apiv2.ErrXML) {
			t.Errorf("nested request XML: %v; want ErrV2XML", err)
		}
		if body.closes.Load() != 1 || srv.PathRequests("/pay/orderquery") != hits {
			t.Error("body not closed once, or the request was sent")
		}
	})
	for _, tc := range []struct {
		fault wechatpaytest.V2Fault
		want  error
	}{
		{wechatpaytest.V2BadSign, wechatpay.ErrBadSignature},
		{wechatpaytest.V2NoSign, wechatpay.ErrMissingSignature},
		{wechatpaytest.V2EntityBomb, apiv2.ErrXML},
	} {
		t.Run(fmt.Sprint("fault ", tc.fault), func(t *testing.T) {
			srv.SetV2Fault(tc.fault)
			defer srv.SetV2Fault(wechatpaytest.V2OK)
			start := time.Now()
			resp, err := newV2Client(srv, "").Post(srv.URL+"/pay/orderquery", "text/xml", strings.NewReader(`<xml><out_trade_no>T</out_trade_no></xml>`))
			if resp != nil || !errors.Is(err, tc.want) {
				t.Errorf("got %v, %v; want nil and %v", resp, err, tc.want)
			}
			// An expanded bomb never ends; the bound only tells "refused
			// at once" from "expanded", with room for any load.
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
	t.Run("unsigned FAIL answer passes unverified", func(t *testing.T) {
		resp, err := newV2Client(srv, "").Post(srv.URL+"/pay/orderquery", "text/xml", strings.NewReader(`<xml><sign_type>SHA1</sign_type></xml>`))
		if err == nil {
			resp.Body.Close()
			t.Fatal("sign_type SHA1 accepted by the transport")
		}
		// A FAIL answer (here: bad nonce_str) comes back unverified.
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/pay/orderquery", strings.NewReader(`<xml><nonce_str>`+strings.Repeat("n", 40)+`</nonce_str></xml>`))
		resp, err = newV2Client(srv, "").Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if wechatpay.IsVerified(resp) || !bytes.Contains(b, []byte("FAIL")) {
			t.Errorf("IsVerified = %v, body %s; want an unverified FAIL", wechatpay.IsVerified(resp), b)
		}
	})
	t.Run("signs only for WeChat Pay's hosts or its BaseURL", func(t *testing.T) {
		sent := 0
		base := roundTripFunc(func(*http.Request) (*http.Response, error) { sent++; return nil, errors.New("stop") })
		for _, tc := range []struct{ baseURL, url string }{
			{"", "https://evil.example/pay/orderquery"},
			{"", "http://api.mch.weixin.qq.com/pay/orderquery"},
			{"", "https://api.mch.weixin.qq.com.evil.example/pay/orderquery"},
			{srv.URL, "https://api.mch.weixin.qq.com/pay/orderquery"},
			{srv.URL, "http://127.0.0.1:1/pay/orderquery"},
		} {
			tr := &apiv2.Transport{MerchantID: m.ID, Key: m.APIv2Key, BaseURL: tc.baseURL, Base: base}
			req, _ := http.NewRequest(http.MethodPost, tc.url, strings.NewReader("<xml><a>1</a></xml>"))
			if _, err := tr.RoundTrip(req); !errors.Is(err, wechatpay.ErrHostNotAllowed) {
				t.Errorf("BaseURL %q, %s: %v; want ErrHostNotAllowed", tc.baseURL, tc.url, err)
			}
		}
		if sent != 0 {
			t.Errorf("%d requests to hosts outside the list were sent", sent)
		}
		tr := &apiv2.Transport{MerchantID: m.ID, Key: m.APIv2Key, Base: base}
		for _, u := range []string{"https://api2.mch.weixin.qq.com/pay/orderquery", "https://FRAUD.mch.weixin.qq.com:443/risk/getpublickey"} {
			req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader("<xml><a>1</a></xml>"))
			if _, err := tr.RoundTrip(req); errors.Is(err, wechatpay.ErrHostNotAllowed) {
				t.Errorf("%s refused: %v", u, err)
			}
		}
	})
	t.Run("key never printed", func(t *testing.T) {
		tr := &apiv2.Transport{MerchantID: m.ID, Key: m.APIv2Key}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			if out := fmt.Sprintf(verb, tr); strings.Contains(out, m.APIv2Key) {
				t.Errorf("%s of V2Transport prints the key: %s", verb, out)
			}
			if out := fmt.Sprintf(verb, m); strings.Contains(out, m.APIv2Key) {
				t.Errorf("%s of Merchant prints the APIv2 key", verb)
			}
		}
	})
}

func TestV2TransportEntityBombFast(t *testing.T) {
	// Direct: the bomb as a request body is refused without expansion.
	bomb := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"><!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]><xml><a>&lol9;</a></xml>`
	start := time.Now()
	tr := &apiv2.Transport{Key: strings.Repeat("k", 32), BaseURL: "http://127.0.0.1:1", Base: roundTripFunc(func(*http.Request) (*http.Response, error) {
		t.Error("request sent")
		return nil, errors.New("no")
	})}
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:1/x", strings.NewReader(bomb))
	if _, err := tr.RoundTrip(req); !errors.Is(err, apiv2.ErrXML) {
		t.Errorf("bomb: %v; want ErrV2XML", err)
	}
	if d := time.Since(start); d > 30*time.Second { // expansion would not end
		t.Errorf("took %s", d)
	}
}

// FuzzParseV2XML: any input either fails with ErrV2XML or yields fields
// that survive an encode/parse round trip.
func FuzzParseV2XML(f *testing.F) {
	for _, s := range []string{`<xml><a>1</a></xml>`, `<xml><a><![CDATA[<b>]]></a></xml>`, `<!DOCTYPE x><xml/>`, `<xml><a>&amp;&#x4F60;</a></xml>`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := apiv2.ParseXML(b)
		if err != nil {
			if !errors.Is(err, apiv2.ErrXML) {
				t.Fatalf("error %v does not wrap ErrV2XML", err)
			}
			return
		}
		back, err := apiv2.ParseXML(apiv2.EncodeXML(m))
		if err != nil || len(back) != len(m) {
			t.Fatalf("round trip of %v: %v, %v", m, back, err)
		}
		for k, v := range m {
			if back[k] != v && !strings.ContainsRune(v, '\r') {
				t.Fatalf("field %q: %q became %q", k, v, back[k])
			}
		}
	})
}
