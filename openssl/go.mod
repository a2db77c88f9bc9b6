module github.com/wxpaykit/wechatpay/openssl

go 1.25.0

require (
	github.com/microsoft/go-crypto-openssl v0.5.0
	github.com/wxpaykit/wechatpay v0.1.0
)

require (
	github.com/hashicorp/golang-lru/v2 v2.0.7 // indirect
	golang.org/x/sync v0.22.0 // indirect
)
