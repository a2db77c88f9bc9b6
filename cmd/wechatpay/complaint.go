package main

import (
	"time"

	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

var complaintHelp = help{
	synopsis: "complaint -sandbox-dir DIR [-detail TEXT] [-phone NUMBER] [-refund FEN] [-sub-mchid ID] OUT_TRADE_NO",
	text: `Files a consumer complaint against a paid order on a running sandbox, as
the payer would in WeChat. The complaint starts PENDING; if the merchant
set a complaint notification URL (POST
/v3/merchant-service/complaint-notifications), the sandbox posts a signed,
encrypted COMPLAINT.CREATE notification to it, and COMPLAINT.STATE_CHANGE
ones as the merchant answers (PROCESSING) and completes (PROCESSED).
Prints the complaint as the detail query shows it, payer_phone encrypted
for the merchant. Works only against a sandbox ('wechatpay sandbox');
WeChat Pay itself has no such endpoint.`,
	example: `wechatpay sandbox -dir /tmp/sandbox &
wechatpay post -sandbox-dir /tmp/sandbox /v3/pay/transactions/native -d '{"description":"tea","out_trade_no":"ORDER20261202002","notify_url":"https://merchant.example/wechatpay/notify","amount":{"total":100}}'
wechatpay pay -sandbox-dir /tmp/sandbox ORDER20261202002
wechatpay post -sandbox-dir /tmp/sandbox /v3/merchant-service/complaint-notifications -d '{"url":"https://merchant.example/wechatpay/notify"}'
wechatpay complaint -sandbox-dir /tmp/sandbox -refund 100 ORDER20261202002`,
}

func (a *app) complaint(name string, args []string) error {
	fs := a.newFlagSet(name, complaintHelp)
	creds := addCredFlags(fs, needSigner|needKeys)
	detail := fs.String("detail", "", "what the payer writes (default: a sample text)")
	phone := fs.String("phone", "", "the payer's phone number, sent encrypted (default: a sample number)")
	refund := fs.Int64("refund", 0, "the payer asks for a refund of this many fen")
	subMchID := fs.String("sub-mchid", "", "the order's sub_mchid, for a service provider's order")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one OUT_TRADE_NO, got %d arguments", len(pos))
	}
	if *refund < 0 {
		return usagef("-refund %d: want a positive number of fen", *refund)
	}
	return sandboxControl(a, creds, name, wechatpaytest.ComplaintPath, *timeout, map[string]any{"out_trade_no": pos[0], "sub_mchid": *subMchID, "detail": *detail, "phone": *phone, "refund": *refund})
}
