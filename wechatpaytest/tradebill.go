package wechatpaytest

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Trade bills of the simulated day. The layout follows WeChat Pay's trade
// bill (交易账单): a header line, one line per payment or refund with
// every value prefixed by a back quote, then a summary header and line.
// Columns as documented for bill_type ALL on WeChat Pay's "申请交易账单"
// and bill format pages.

const tradeBillHeader = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\r\n"

const tradeBillSummaryHeader = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n"

// feeRate is the sandbox's fee: 0.6%, rounded to the fen.
func fee(fen int64) int64 { return (fen*6 + 500) / 1000 }

// billRow is one line of a trade bill.
type billRow struct {
	at   time.Time
	cols []string
}

// tradeBill builds the trade bill of merchant caller for date (Beijing
// time) and kind (ALL, SUCCESS, REFUND). It returns nil if the merchant
// had no payment or refund that day.
func (od *orders) tradeBill(caller, date, kind string) []byte {
	od.mu.Lock()
	var rows []billRow
	var n int
	var settled, refunded, fees, ordered, asked int64
	day := func(t time.Time) bool { return !t.IsZero() && t.In(beijing).Format(time.DateOnly) == date }
	ids := func(o *order) (string, string) {
		if o.Partner {
			return o.Merchant, o.Owner
		}
		return o.Owner, "0"
	}
	if kind == "ALL" || kind == "SUCCESS" {
		for _, o := range od.byKey {
			if o.Merchant != caller || o.TransactionID == "" || !day(o.SuccessTime) {
				continue
			}
			mch, sub := ids(o)
			f := fee(o.Total)
			rows = append(rows, billRow{o.SuccessTime, []string{
				o.SuccessTime.In(beijing).Format(time.DateTime), o.AppID, mch, sub, "", o.TransactionID, o.OutTradeNo,
				o.OpenID + o.SubOpenID, o.TradeType, "SUCCESS", "OTHERS", o.Currency, yuan(o.Total), "0.00",
				"0", "0", "0.00", "0.00", "", "", o.Description, o.Attach, yuan(f), "0.60%", yuan(o.Total), "0.00", "",
			}})
			n++
			settled, fees, ordered = settled+o.Total, fees+f, ordered+o.Total
		}
	}
	if kind == "ALL" || kind == "REFUND" {
		for _, rf := range od.refunds {
			o := od.byKey[rf.OrderKey]
			if rf.Merchant != caller || o == nil || !day(rf.CreateTime) {
				continue
			}
			mch, sub := ids(o)
			f := -fee(rf.Refund)
			rows = append(rows, billRow{rf.CreateTime, []string{
				rf.CreateTime.In(beijing).Format(time.DateTime), o.AppID, mch, sub, "", rf.TransactionID, rf.OutTradeNo,
				o.OpenID + o.SubOpenID, o.TradeType, "REFUND", "OTHERS", o.Currency, "0.00", "0.00",
				rf.RefundID, rf.OutRefundNo, yuan(rf.Refund), "0.00", "ORIGINAL", rf.Status, o.Description, o.Attach,
				yuan(f), "0.60%", "0.00", yuan(rf.Refund), "",
			}})
			n++
			refunded, fees, asked = refunded+rf.Refund, fees+f, asked+rf.Refund
		}
	}
	od.mu.Unlock()
	if len(rows) == 0 {
		return nil
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].at.Before(rows[j].at) })
	var b bytes.Buffer
	b.WriteString(tradeBillHeader)
	line := func(cols []string) {
		for i, c := range cols {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('`')
			b.WriteString(strings.NewReplacer(",", "，", "\r", " ", "\n", " ", "`", "'").Replace(c))
		}
		b.WriteString("\r\n")
	}
	for _, r := range rows {
		line(r.cols)
	}
	b.WriteString(tradeBillSummaryHeader)
	line([]string{strconv.Itoa(n), yuan(settled), yuan(refunded), "0.00", yuan(fees), yuan(ordered), yuan(asked)})
	return b.Bytes()
}

// serveTradeBill answers GET /v3/bill/tradebill. A day on which the
// merchant had simulated payments or refunds gets their bill; another day,
// or any day once SetBillSize was called, gets a generated bill of the
// configured size (for download tests).
func (b *bills) serveTradeBill(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	date := q.Get("bill_date")
	if _, err := time.Parse(time.DateOnly, date); err != nil {
		WriteError(w, http.StatusBadRequest, "PARAM_ERROR", "bill_date格式错误，应为YYYY-MM-DD")
		return
	}
	kind := q.Get("bill_type")
	switch kind {
	case "":
		kind = "ALL"
	case "ALL", "SUCCESS", "REFUND":
	default:
		WriteError(w, http.StatusBadRequest, "PARAM_ERROR", "bill_type应为ALL、SUCCESS或REFUND")
		return
	}
	var bill []byte
	if b.size.Load() == 0 {
		bill = b.orders.tradeBill(MerchantIDFrom(r.Context()), date, kind)
	}
	if bill == nil {
		b.serveBill(w, r)
		return
	}
	sum := sha1.Sum(bill)
	tok := "S" + randomText(40)
	if b.realCount.Add(1) > maxRealBills { // bound memory: old download URLs expire
		b.real.Clear()
		b.realCount.Store(1)
	}
	b.real.Store(tok, simBill{merchantID: MerchantIDFrom(r.Context()), data: bill})
	writeJSON(w, map[string]string{
		"hash_type":    "SHA1",
		"hash_value":   hex.EncodeToString(sum[:]),
		"download_url": b.url + billFilePath + "?token=" + tok,
	})
}

// maxRealBills bounds how many bills of the simulated day the server
// keeps for download at a time.
const maxRealBills = 1024

// simBill is a generated bill of the simulated day.
type simBill struct {
	merchantID string
	data       []byte
}
