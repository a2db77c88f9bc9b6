package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

var notifyHelp = help{
	synopsis: "notify -url URL [-event TYPE] [-d RESOURCE_JSON] -sandbox-dir DIR",
	text: `Asks a running sandbox ('wechatpay sandbox') to post a signed, encrypted
callback notification to URL, as WeChat Pay does, and prints the status your
server answered. The sandbox is reached through its control endpoint
POST /sandbox/notify with the sandbox merchant's credentials (from
-sandbox-dir, or the credential flags). -d gives the resource before
encryption as a JSON object (default: a sample payment, or a sample refund for
REFUND.* events). Exit status 0 if your server answered 200 or 204, 4
otherwise.`,
	example: `wechatpay sandbox -addr 127.0.0.1:8080 -dir /tmp/sandbox &
wechatpay notify -sandbox-dir /tmp/sandbox -url http://127.0.0.1:8000/wechatpay/notify
wechatpay notify -sandbox-dir /tmp/sandbox -url http://127.0.0.1:8000/wechatpay/notify -event REFUND.SUCCESS -d '{"out_trade_no":"ORDER20261202001","out_refund_no":"REFUND20261202001","refund_status":"SUCCESS","amount":{"total":100,"refund":30,"payer_total":100,"payer_refund":30}}'`,
}

func (a *app) notify(name string, args []string) error {
	fs := a.newFlagSet(name, notifyHelp)
	creds := addCredFlags(fs, needSigner|needKeys)
	target := fs.String("url", "", "your callback `URL` (notify_url)")
	event := fs.String("event", "TRANSACTION.SUCCESS", "event_type of the notification")
	var body bodyFlag
	fs.Var(&body, "d", "the resource before encryption: a JSON object, @FILE, or @- for standard input")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if u, err := url.Parse(*target); *target == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("-url must be the absolute http(s) URL of your callback handler")
	}
	resource, err := body.read(a.stdin)
	if err != nil {
		return err
	}
	cmd := struct {
		URL       string          `json:"url"`
		EventType string          `json:"event_type"`
		Resource  json.RawMessage `json:"resource,omitempty"`
	}{URL: *target, EventType: *event}
	if body.set {
		var obj map[string]any
		if err := json.Unmarshal(resource, &obj); err != nil {
			return usagef("-d must be a JSON object: %v", err)
		}
		cmd.Resource = resource
	}
	payload, err := json.Marshal(cmd)
	if err != nil {
		return err
	}

	s, err := creds.load(a, name)
	if err != nil {
		return err
	}
	defer s.close()
	ctx, cancel := context.WithTimeout(a.ctx, *timeout)
	defer cancel()
	data, err := s.call(ctx, http.MethodPost, s.cfg.BaseURL+"/sandbox/notify", payload)
	if err != nil {
		return atHost(err, s.cfg.BaseURL, *timeout)
	}
	var result struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	}
	if err := json.Unmarshal(data, &result); err != nil || result.Status == 0 {
		return fmt.Errorf("the sandbox's answer is not {\"status\":...,\"body\":...}: is %s a wechatpay sandbox?", s.cfg.BaseURL)
	}
	fmt.Fprintf(a.stdout, "%s answered HTTP %d %s\n", *target, result.Status, http.StatusText(result.Status))
	if result.Body != "" {
		fmt.Fprintf(a.stdout, "body: %s\n", result.Body)
	}
	if result.Status != http.StatusOK && result.Status != http.StatusNoContent {
		return &exitError{code: exitAPIError, msg: fmt.Sprintf("wechatpay notify: the callback was not accepted (HTTP %d); WeChat Pay would retry it later", result.Status)}
	}
	return nil
}
