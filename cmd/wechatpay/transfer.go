package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/payments"
	"github.com/wxpaykit/wechatpay/transfers"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// The transfer commands and demo steps (商家转账, docs/protocol.md §14).

var confirmTransferHelp = help{
	synopsis: "confirm-transfer -sandbox-dir DIR [-fail] [-sub-mchid ID] OUT_BILL_NO",
	text: `Confirms a transfer bill on a running sandbox, as the user would in WeChat after
wx.requestMerchantTransfer: the bill becomes SUCCESS (with -fail, FAIL) and
the sandbox posts a signed, encrypted MCHTRANSFER.BILL.FINISHED notification
to the bill's notify_url, retrying on WeChat Pay's schedule until the
merchant answers 200 or 204. Prints the bill as the query API shows it.
The sandbox's confirmation page (/sandbox/cashier/transfer?package=...) does
the same in a browser. Works only against a sandbox ('wechatpay sandbox');
WeChat Pay itself has no such endpoint.`,
	example: `wechatpay sandbox -dir /tmp/sandbox &
wechatpay post -sandbox-dir /tmp/sandbox /v3/fund-app/mch-transfer/transfer-bills -d '{"appid":"wxd678efh567hg6787","out_bill_no":"B1001","transfer_scene_id":"1000","openid":"o-MYE42l80oelYMDE34nYD456Xoy","transfer_amount":100,"transfer_remark":"reward","notify_url":"http://127.0.0.1:9000/notify"}'
wechatpay confirm-transfer -sandbox-dir /tmp/sandbox B1001`,
}

func (a *app) confirmTransfer(name string, args []string) error {
	fs := a.newFlagSet(name, confirmTransferHelp)
	creds := addCredFlags(fs, needSigner|needKeys)
	fail := fs.Bool("fail", false, "the payout fails after the user confirmed: the bill becomes FAIL")
	subMchID := fs.String("sub-mchid", "", "the bill's sub_mchid, for a service provider's bill")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one OUT_BILL_NO, got %d arguments", len(pos))
	}
	result := "SUCCESS"
	if *fail {
		result = "FAIL"
	}
	return sandboxControl(a, creds, name, wechatpaytest.ConfirmTransferPath, *timeout, map[string]string{"out_bill_no": pos[0], "sub_mchid": *subMchID, "result": result})
}

// isTransferKind reports whether args ask payparams for a transfer's
// parameters (-kind transfer or transfer-app), which payparamsTransfer
// builds: they take no key and sign nothing.
func isTransferKind(args []string) bool {
	for i, a := range args {
		if a == "--" {
			return false
		}
		v, ok := strings.CutPrefix(strings.TrimPrefix(a, "-"), "-kind=")
		if !ok {
			v, ok = strings.CutPrefix(strings.TrimPrefix(a, "-"), "kind=")
		}
		if !ok && (a == "-kind" || a == "--kind") && i+1 < len(args) {
			v, ok = args[i+1], true
		}
		if ok {
			return v == "transfer" || v == "transfer-app"
		}
	}
	return false
}

var payparamsTransferHelp = help{
	synopsis: "payparams -kind transfer|transfer-app -mchid ID -appid APPID -package PACKAGE_INFO [-openid OPENID] [-sub-mchid ID]",
	text: `Prints, as JSON, what a front end passes to WeChat so that the user confirms a
transfer bill waiting in WAIT_USER_CONFIRM, from the bill's package_info: for
-kind transfer (mini-program, or a page inside WeChat) the object for
wx.requestMerchantTransfer / WeixinJSBridge.invoke("requestMerchantTransfer"):
mchId, appId, package, and openId, subMchId when given; for -kind
transfer-app the businessType and query string an App passes to the Open
SDK's open-business-view. Nothing is signed. The front end's success only
means the page was shown: whether the user was paid comes from the
MCHTRANSFER.BILL.FINISHED notification or a query. Needs -mchid only.`,
	example: `wechatpay payparams -kind transfer -mchid 1230000109 -appid wxd678efh567hg6787 -package 'ABBQO+oYAAABAAAAAAC/dH=='`,
}

func (a *app) payparamsTransfer(name string, args []string) error {
	fs := a.newFlagSet(name, payparamsTransferHelp)
	creds := addCredFlags(fs, needSigner)
	kind := fs.String("kind", "transfer", "`KIND`: transfer (mini-program, JSAPI) or transfer-app")
	appID := fs.String("appid", "", "the `APPID` the bill was made for (for an App, its Open Platform appid)")
	pkg := fs.String("package", "", "the bill's `PACKAGE_INFO`")
	openID := fs.String("openid", "", "transfer only: the user's `OPENID`, which WeChat then checks")
	subMchID := fs.String("sub-mchid", "", "transfer only: the sub-merchant `ID` of a service provider's bill")
	pos, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	if *appID == "" || *pkg == "" {
		return usagef("-appid and -package are required")
	}
	mchID := *creds.vals["mchid"]
	if mchID == "" && creds.sandboxDir != "" {
		f, err := readSandboxFile(creds.sandboxDir)
		if err != nil {
			return usagef("-sandbox-dir: %v", err)
		}
		mchID = f.get("mchid")
	}
	if mchID == "" {
		mchID = a.getenv("WECHATPAY_MCHID")
	}
	if mchID == "" {
		return usagef("the merchant ID is missing: pass -mchid ID or set WECHATPAY_MCHID")
	}
	bill := &transfers.Bill{State: transfers.StateWaitUserConfirm, PackageInfo: *pkg}
	var out any
	switch *kind {
	case "transfer":
		p, err := transfers.NewConfirmParams(mchID, *appID, bill, *openID)
		if err != nil {
			return usagef("%v", err)
		}
		p.SubMchID = *subMchID
		out = p
	case "transfer-app":
		q, err := transfers.AppQuery(mchID, *appID, bill)
		if err != nil {
			return usagef("%v", err)
		}
		out = map[string]string{"businessType": transfers.AppBusinessType, "query": q}
	default:
		return usagef("-kind is %q; want transfer or transfer-app", *kind)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%s\n", b)
	return nil
}

// The demo's transfer steps (listed in demoSteps): a bill with the
// user's name (encrypted on the way), the user's confirmation, the
// MCHTRANSFER.BILL.FINISHED callback through a Router, and the query.
func demoTransferSteps() []demoStep {
	return []demoStep{
		{"Pay a user 2,500.00 CNY with transfers.Client (the name encrypted for the key Wechatpay-Serial names)", (*demoRun).transferCreate, false},
		{"The user confirms in WeChat (the sandbox's confirmation page)", (*demoRun).transferConfirm, false},
		{"The MCHTRANSFER.BILL.FINISHED callback arrives (verified, decrypted, routed to a typed handler)", (*demoRun).transferCallback, false},
		{"Query the bill by out_bill_no", (*demoRun).transferQuery, false},
	}
}

const (
	demoOutBillNo = "DEMOTRANSFER01"
	demoUserName  = "沙箱用户" // sandbox data, never printed
)

// demoTransfer is what the transfer steps share.
type demoTransfer struct {
	c        *transfers.Client
	finished chan *transfers.Bill // what the merchant's Router received
	bill     *transfers.Bill      // as created
}

func (r *demoRun) transferCreate() ([]string, error) {
	tr := &demoTransfer{c: &transfers.Client{HTTP: r.client, MerchantID: r.m.ID, AppID: demoAppID},
		finished: make(chan *transfers.Bill, 4)}
	var rt middleware.Router
	middleware.On(&rt, transfers.EventBillFinished, func(ctx context.Context, n *middleware.Notification, b *transfers.Bill) error {
		tr.finished <- b
		return nil
	})
	hook := httptest.NewServer(middleware.Notifications(middleware.Config{Keys: r.store, MerchantID: r.m.ID, APIv3Key: r.m.APIv3Key})(&rt))
	r.cleanup = append(r.cleanup, hook.Close)
	bill, err := tr.c.Create(r.ctx, transfers.BillRequest{
		OutBillNo: demoOutBillNo, TransferSceneID: "1000", OpenID: "o-MYE42l80oelYMDE34nYD456Xoy",
		UserName: demoUserName, TransferAmount: 2500_00, TransferRemark: "sandbox reward",
		NotifyURL: hook.URL + "/wechatpay/notify",
		TransferSceneReportInfos: []transfers.SceneReportInfo{
			{InfoType: "活动名称", InfoContent: "沙箱活动"}, {InfoType: "奖励说明", InfoContent: "演示奖励"},
		},
	})
	if err != nil {
		return nil, err
	}
	tr.bill, r.transfer = bill, tr
	return []string{
		fmt.Sprintf("POST /v3/fund-app/mch-transfer/transfer-bills: bill %s (%s), state %s", bill.OutBillNo, bill.TransferBillNo, bill.State),
		"user_name went encrypted for the key named in Wechatpay-Serial; the sandbox decrypted it with that key",
		"a bill of 2,000 yuan or more without user_name is refused before anything is sent",
	}, nil
}

// errNoBill is the error of a step whose bill the create step did not make.
var errNoBill = errors.New("no bill: the create step failed")

func (r *demoRun) transferConfirm() ([]string, error) {
	tr := r.transfer
	if tr == nil {
		return nil, errNoBill
	}
	params, err := tr.c.ConfirmParams(tr.bill)
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	// The user taps "Confirm" on the page WeChat opens: the sandbox's.
	page, err := http.PostForm(r.srv.URL+wechatpaytest.TransferConfirmPath, url.Values{"package": {params.Package}})
	if err != nil {
		return nil, err
	}
	page.Body.Close()
	if page.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the confirmation page answered %s", page.Status)
	}
	return []string{
		"wx.requestMerchantTransfer(" + string(js) + ")",
		"confirmation page: " + wechatpaytest.TransferConfirmURL(r.srv.URL, tr.bill.PackageInfo),
		"the front end's success only means the page was shown; the callback or a query says whether the user was paid",
	}, nil
}

func (r *demoRun) transferCallback() ([]string, error) {
	tr := r.transfer
	if tr == nil {
		return nil, errNoBill
	}
	select {
	case b := <-tr.finished:
		if b.OutBillNo != demoOutBillNo || b.State != transfers.StateSuccess {
			return nil, fmt.Errorf("callback for %s in state %s", b.OutBillNo, b.State)
		}
		return []string{fmt.Sprintf("callback %s: bill %s, %s, state %s", transfers.EventBillFinished, b.OutBillNo,
			payments.FormatAmount(b.TransferAmount, "CNY"), b.State)}, nil
	case <-r.ctx.Done():
		return nil, errors.New("no MCHTRANSFER.BILL.FINISHED callback arrived")
	}
}

func (r *demoRun) transferQuery() ([]string, error) {
	tr := r.transfer
	if tr == nil {
		return nil, errNoBill
	}
	q, err := tr.c.QueryByOutBillNo(r.ctx, demoOutBillNo)
	if err != nil {
		return nil, err
	}
	if q.State != transfers.StateSuccess {
		return nil, fmt.Errorf("state %s, want SUCCESS", q.State)
	}
	named := "not returned"
	switch q.UserName {
	case demoUserName:
		named = "decrypted with the merchant key, as sent"
	case "":
	default:
		return nil, errors.New("user_name came back other than sent")
	}
	return []string{fmt.Sprintf("state %s, %s; user_name %s", q.State, payments.FormatAmount(q.TransferAmount, "CNY"), named)}, nil
}
