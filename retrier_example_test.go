package wechatpay_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/wechatpaytest"
)

// ExampleRetry puts a Retry outside the signing Transport: WeChat Pay
// (here the sandbox) fails the first attempt with 500 SYSTEM_ERROR, and
// the second, signed afresh with the same body, succeeds.
func ExampleRetry() {
	srv := wechatpaytest.NewServer()
	defer srv.Close()
	var calls atomic.Int32
	srv.Handle("POST /v3/example/retry", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if calls.Add(1) == 1 {
			wechatpaytest.WriteError(w, http.StatusInternalServerError, "SYSTEM_ERROR", "系统异常，请用相同参数重新调用")
			return
		}
		w.Write(body)
	}))

	t, err := wechatpay.NewTransport(srv.Config())
	if err != nil {
		panic(err)
	}
	client := &http.Client{Transport: &wechatpay.Retry{
		Base:        t, // or a *wechatpay.Failover over t
		MaxAttempts: 3,
		BaseDelay:   10 * time.Millisecond,
		Events: func(_ context.Context, ev wechatpay.Event) {
			fmt.Println(ev.Kind, ev.Attempt, ev.Status)
		},
	}}
	resp, err := client.Post(srv.Config().BaseURL+"/v3/example/retry", "application/json", strings.NewReader(`{"out_trade_no":"T1"}`))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, wechatpay.IsVerified(resp), string(body))
	// Output:
	// retry_attempt 1 500
	// retry_attempt 2 200
	// 200 true {"out_trade_no":"T1"}
}
