package wire

import (
	"fmt"
	"net/url"
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
