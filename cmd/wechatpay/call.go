package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
)

var callHelp = map[string]help{
	"get": {
		synopsis: "get [flags] PATH",
		text: `Makes a signed GET of PATH (relative to the base URL; it may carry a query)
and prints the response body, whose signature was verified, to standard
output. With -v, the status line and the Request-ID go to standard error.
Against a sandbox (-sandbox, -sandbox-dir), an order query without ?mchid=
gets the sandbox merchant's.`,
		example: `wechatpay get -sandbox /v3/certificates
wechatpay get '/v3/pay/transactions/out-trade-no/1217752501201407033233368018?mchid=1900000001' -v`,
	},
	"post": {
		synopsis: "post [flags] PATH -d BODY",
		text: `Makes a signed POST of the JSON BODY to PATH and prints the verified
response body. -d @FILE reads the body from FILE and -d @- from standard
input; the bytes are sent and signed exactly as read, except against a
sandbox (-sandbox, -sandbox-dir): there an order (/v3/pay/transactions/...)
without "mchid" gets the sandbox merchant's, and a prepay without "appid" a
sample one, since an example cannot know them in advance.`,
		example: `wechatpay post -sandbox /v3/pay/transactions/native -d '{"description":"tea","out_trade_no":"ORDER20261202001","notify_url":"https://merchant.example/wechatpay/notify","amount":{"total":100}}'
wechatpay post /v3/refund/domestic/refunds -d @refund.json -v`,
	},
	"put": {
		synopsis: "put [flags] PATH -d BODY",
		text:     `Makes a signed PUT of the JSON BODY to PATH and prints the verified response body.`,
		example:  `wechatpay put /v3/merchant-service/complaint-notifications -d '{"url":"https://example.com/complaints"}'`,
	},
	"patch": {
		synopsis: "patch [flags] PATH -d BODY",
		text:     `Makes a signed PATCH of the JSON BODY to PATH and prints the verified response body.`,
		example:  `wechatpay patch /v3/marketing/favor/users/OPENID/coupons/COUPON -d @patch.json`,
	},
	"delete": {
		synopsis: "delete [flags] PATH [-d BODY]",
		text:     `Makes a signed DELETE of PATH (with an optional JSON body) and prints the verified response body.`,
		example:  `wechatpay delete /v3/merchant-service/complaint-notifications`,
	},
}

// call runs get, post, put, patch and delete.
func (a *app) call(name string, args []string) error {
	fs := a.newFlagSet(name, callHelp[name])
	creds := addCredFlags(fs, needSigner|needKeys)
	var headers headerFlag
	fs.Var(&headers, "H", "add a request header `'Name: value'` (repeatable)")
	var body bodyFlag
	if name != "get" {
		fs.Var(&body, "d", "request `BODY`: JSON text, @FILE, or @- for standard input")
	}
	verbose := fs.Bool("v", false, "print the status line, Request-ID and signature serial to standard error")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one PATH, got %d arguments", len(pos))
	}
	if (name == "post" || name == "put" || name == "patch") && !body.set {
		return usagef("%s needs a JSON body: -d '{...}', -d @FILE or -d @- (for an empty body, -d '')", name)
	}
	data, err := body.read(a.stdin)
	if err != nil {
		return err
	}
	s, err := creds.load(a, name)
	if err != nil {
		return err
	}
	defer s.close()

	target, err := resolve(s.cfg.BaseURL, pos[0])
	if err != nil {
		return err
	}
	var send []byte
	if body.set {
		send = data
		if send == nil {
			send = []byte{}
		}
	}
	if s.sandbox {
		var filled []string
		target, send, filled = sandboxDefaults(s.cfg.MerchantID, strings.ToUpper(name), target, send)
		if *verbose && len(filled) > 0 {
			fmt.Fprintf(a.stderr, "sandbox: filled in %s\n", strings.Join(filled, ", "))
		}
	}
	ctx, cancel := context.WithTimeout(a.ctx, *timeout)
	defer cancel()
	resp, err := s.send(ctx, strings.ToUpper(name), target, send, headers)
	if err != nil {
		return atHost(err, target, *timeout)
	}
	defer resp.Body.Close()
	if *verbose {
		fmt.Fprintf(a.stderr, "%s %s\n", resp.Proto, resp.Status)
		fmt.Fprintf(a.stderr, "Request-ID: %s\n", resp.Header.Get(wire.HeaderRequestID))
		if wechatpay.IsVerified(resp) {
			fmt.Fprintf(a.stderr, "Signature: verified (Wechatpay-Serial %s)\n", resp.Header.Get(wire.HeaderSerial))
		} else {
			fmt.Fprintf(a.stderr, "Signature: none (not verified)\n")
		}
	}
	if err := wechatpay.CheckResponse(resp); err != nil {
		return atHost(err, target, *timeout)
	}
	_, err = io.Copy(a.stdout, resp.Body)
	return err
}

// resolve joins the base URL and a PATH argument. A full http(s) URL is
// taken as it is; anything else must be an absolute path.
func resolve(base, path string) (string, error) {
	if strings.HasPrefix(path, "https://") || strings.HasPrefix(path, "http://") {
		return path, nil
	}
	if !strings.HasPrefix(path, "/") {
		return "", usagef("PATH %q must start with / (for example /v3/certificates)", path)
	}
	return strings.TrimSuffix(base, "/") + path, nil
}

// sandboxAppID is the appid a sandbox order gets when it names none: the
// sandbox takes any.
const sandboxAppID = "wxd678efh567hg6787"

// sandboxDefaults fills in, for a call to a sandbox, what an example
// cannot know in advance: the merchant's mchid in a direct merchant's
// order (its query string, or its JSON body) and a sample appid in a
// prepay. Anything the caller gave is kept. It returns the target and
// body to send, and what it filled in.
func sandboxDefaults(mchid, method, target string, body []byte) (string, []byte, []string) {
	u, err := url.Parse(target)
	if err != nil || !strings.HasPrefix(u.Path, "/v3/pay/transactions/") {
		return target, body, nil
	}
	var filled []string
	if method == http.MethodGet {
		q := u.Query()
		if q.Get("mchid") == "" {
			q.Set("mchid", mchid)
			u.RawQuery = q.Encode()
			target = u.String()
			filled = append(filled, "mchid="+mchid)
		}
		return target, body, filled
	}
	var obj map[string]json.RawMessage
	if len(body) == 0 || json.Unmarshal(body, &obj) != nil {
		return target, body, nil
	}
	set := func(key, v string) {
		if _, ok := obj[key]; !ok {
			obj[key], _ = json.Marshal(v)
			filled = append(filled, fmt.Sprintf("%q: %q", key, v))
		}
	}
	set("mchid", mchid)
	switch strings.TrimPrefix(u.Path, "/v3/pay/transactions/") {
	case "jsapi", "app", "h5", "native":
		set("appid", sandboxAppID)
	}
	if len(filled) == 0 {
		return target, body, nil
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return target, body, nil
	}
	return target, out, filled
}

// sandboxControl posts body, as JSON, to one of the sandbox's control
// endpoints (path, such as wechatpaytest.PayPath) with the merchant's
// signed credentials, and prints the answer: the one path of 'pay',
// 'confirm-transfer' and 'complaint'.
func sandboxControl(a *app, creds *credFlags, name, path string, timeout time.Duration, body any) error {
	s, err := creds.load(a, name)
	if err != nil {
		return err
	}
	defer s.close()
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(a.ctx, timeout)
	defer cancel()
	target, err := resolve(s.cfg.BaseURL, path)
	if err != nil {
		return err
	}
	answer, err := s.call(ctx, http.MethodPost, target, b)
	if err != nil {
		return atHost(err, target, timeout)
	}
	fmt.Fprintf(a.stdout, "%s\n", answer)
	return nil
}
