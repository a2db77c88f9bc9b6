package wechatpay

// Store holds WeChat Pay verification keys. (Being written.)
type Store struct{}
