module github.com/wxpaykit/wechatpay/browsertest

go 1.25.0

require (
	github.com/chromedp/chromedp v0.23.0
	github.com/wxpaykit/wechatpay v0.1.0
)

require (
	github.com/chromedp/cdproto v0.159.0 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	github.com/hashicorp/golang-lru/v2 v2.0.7 // indirect
	golang.org/x/sync v0.22.0 // indirect
)
