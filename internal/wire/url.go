package wire

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ParseBaseURL parses an API host URL: http or https, with a host.
func ParseBaseURL(base string) (*url.URL, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("BaseURL %q is not an http(s) URL", Truncate(base, 80))
	}
	return u, nil
}

// Redacted says whether a secret is set, without showing it.
func Redacted(set bool) string {
	if set {
		return "[redacted]"
	}
	return "[unset]"
}

// NormalHost is host (host or host:port, as in url.URL.Host) in lower
// case, without scheme's default port, so that hosts can be compared.
func NormalHost(scheme, host string) string {
	host = strings.ToLower(host)
	if !strings.Contains(host, ":") {
		return host // no port: SplitHostPort would only allocate its error
	}
	if name, port, err := net.SplitHostPort(host); err == nil &&
		(scheme == "https" && port == "443" || scheme == "http" && port == "80") {
		host = name
		if strings.Contains(name, ":") {
			host = "[" + name + "]"
		}
	}
	return host
}
