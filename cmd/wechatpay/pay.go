package main

import (
	"time"

	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

var payHelp = help{
	synopsis: "pay -sandbox-dir DIR [-fail | -userpaying] [-sub-mchid ID] OUT_TRADE_NO",
	text: `Pays an order placed on a running sandbox, as the payer would on the
cashier page: the order becomes SUCCESS and the sandbox posts a signed,
encrypted TRANSACTION.SUCCESS notification to the order's notify_url,
retrying on WeChat Pay's schedule until the merchant answers 200 or 204.
OUT_TRADE_NO may be a combine order's combine_out_trade_no: every
sub-order is paid and one TRANSACTION.SUCCESS is sent for the whole.
With -fail the payment fails (PAYERROR, no notification); with -userpaying
it stays USERPAYING until paid again. Prints the order as the query API
shows it. Works only against a sandbox ('wechatpay sandbox'); WeChat Pay
itself has no such endpoint.`,
	example: `wechatpay sandbox -dir /tmp/sandbox &
wechatpay post -sandbox-dir /tmp/sandbox /v3/pay/transactions/native -d '{"description":"tea","out_trade_no":"ORDER20261202001","notify_url":"https://merchant.example/wechatpay/notify","amount":{"total":100}}'
wechatpay pay -sandbox-dir /tmp/sandbox ORDER20261202001`,
}

func (a *app) pay(name string, args []string) error {
	fs := a.newFlagSet(name, payHelp)
	creds := addCredFlags(fs, needSigner|needKeys)
	fail := fs.Bool("fail", false, "the payment fails: the order becomes PAYERROR")
	userPaying := fs.Bool("userpaying", false, "the payment stays pending: the order becomes USERPAYING")
	subMchID := fs.String("sub-mchid", "", "the order's sub_mchid, for a service provider's order")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one OUT_TRADE_NO, got %d arguments", len(pos))
	}
	if *fail && *userPaying {
		return usagef("-fail and -userpaying exclude each other")
	}
	result := "SUCCESS"
	switch {
	case *fail:
		result = "PAYERROR"
	case *userPaying:
		result = "USERPAYING"
	}
	return sandboxControl(a, creds, name, wechatpaytest.PayPath, *timeout, map[string]string{"out_trade_no": pos[0], "sub_mchid": *subMchID, "result": result})
}
