module github.com/wxpaykit/wechatpay

go 1.25.0

require (
	github.com/hashicorp/golang-lru/v2 v2.0.7
	golang.org/x/sync v0.22.0
)
