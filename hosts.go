package wechatpay

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// WeChat Pay's documented API hosts and, for each, the other host of its
// region (docs/protocol.md §1.6, §11): a Transport signs for its
// BaseURL's host and that other host, which Failover uses as the backup.
var otherHost = map[string]string{
	"api.mch.weixin.qq.com":   "api2.mch.weixin.qq.com", // mainland: main → backup
	"api2.mch.weixin.qq.com":  "api.mch.weixin.qq.com",  // mainland: backup → main
	"apihk.mch.weixin.qq.com": "api.mch.weixin.qq.com",  // global: the other host as its backup
	"api.wechatpay.cn":        "api2.wechatpay.cn",
	"api2.wechatpay.cn":       "api.wechatpay.cn",
}

// apiHosts is the set of hosts a merchant whose BaseURL is base may send
// signed requests to: base's own host (with its port, if any), and, when
// base is one of WeChat Pay's documented hosts, the other hosts of its
// region. The first element is base's host. A custom host (a sandbox, a
// proxy of the merchant's) allows itself alone.
type apiHosts struct {
	scheme string
	hosts  []string // lower-case host[:port]; the first is the BaseURL's
}

func newAPIHosts(base *url.URL) apiHosts {
	h := apiHosts{scheme: base.Scheme, hosts: []string{wire.NormalHost(base.Scheme, base.Host)}}
	if base.Scheme != "https" || base.Port() != "" && base.Port() != "443" {
		return h
	}
	if other, ok := otherHost[strings.ToLower(base.Hostname())]; ok {
		h.hosts = append(h.hosts, other)
	}
	return h
}

// check returns nil if u may receive a request signed for this merchant:
// same scheme as the BaseURL, and one of the hosts.
func (h apiHosts) check(u *url.URL) error {
	if u.Scheme != h.scheme {
		return fmt.Errorf("%w: %s://%s (this merchant's API is %s://%s)", ErrHostNotAllowed, wire.Truncate(u.Scheme, 16), wire.Truncate(u.Host, 80), h.scheme, h.hosts[0])
	}
	host := wire.NormalHost(u.Scheme, u.Host)
	for _, allowed := range h.hosts {
		if host == allowed {
			return nil
		}
	}
	return fmt.Errorf("%w: %s (allowed: %s)", ErrHostNotAllowed, wire.Truncate(u.Host, 80), strings.Join(h.hosts, ", "))
}
