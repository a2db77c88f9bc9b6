// Package apicall is the one call path the product packages (payments,
// transfers, profitsharing, complaints) share: marshal, send through a
// signing and verifying client, classify the failure, decode. Each
// package keeps its exported Do or typed methods as thin wrappers, so a
// rule about outcomes or paths is written here once.
package apicall

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
)

// maxAnswer bounds the answer Do decodes; the Transport already bounds
// what it verified (DefaultMaxBodySize), this only guards a client
// without one.
const maxAnswer = 8 << 20

// Do makes one JSON call to WeChat Pay through client, whose Transport
// must be a *wechatpay.Transport (it signs the request and verifies the
// answer). It marshals in as the request body (nil: no body), sends
// method rawURL, and decodes the answer into out (nil: the answer is
// read and dropped; a 204 leaves out untouched).
//
// Errors:
//   - a non-2xx answer is the *wechatpay.APIError of
//     wechatpay.CheckResponse;
//   - a failed state-changing call (POST, PUT, PATCH, DELETE) whose
//     request may have reached WeChat Pay is a
//     *wechatpay.OutcomeUnknownError: query before trying again;
//   - anything else (a verification failure of a query, a network error)
//     is returned as client.Do returned it.
//
// Build rawURL with PathEscape'd segments: Do sends it as given.
func Do(ctx context.Context, pkg string, client *http.Client, method, rawURL string, in, out any) error {
	if client == nil {
		return errors.New("wechatpay/" + pkg + ": nil *http.Client")
	}
	inQuery := method == http.MethodGet || method == http.MethodHead
	var body io.Reader
	var fields *wire.Fields
	if in != nil {
		inv := reflect.ValueOf(in)
		switch {
		case hasMarked(inv, tagEncrypt):
			fields = &wire.Fields{Build: builder(inv, inQuery, rawURL)}
		case inQuery:
			u, err := withQuery(rawURL, inv)
			if err != nil {
				return fmt.Errorf("wechatpay/%s: %s %s: %w", pkg, method, pathOf(rawURL), err)
			}
			rawURL = u
		default:
			b, err := json.Marshal(in)
			if err != nil {
				return fmt.Errorf("wechatpay/%s: encoding %s %s request: %w", pkg, method, pathOf(rawURL), err)
			}
			body = bytes.NewReader(b)
		}
	}
	decrypt := out != nil && marked(reflect.TypeOf(out), tagDecrypt)
	if decrypt && fields == nil {
		fields = &wire.Fields{}
	}
	if fields != nil {
		ctx = wire.WithFields(ctx, fields)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil {
		return fmt.Errorf("wechatpay/%s: %w", pkg, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil && !inQuery {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return wechatpay.ClassifyError(req, err)
	}
	defer resp.Body.Close()
	if err := wechatpay.CheckResponse(resp); err != nil {
		// An error answer whose signature did not verify says nothing: a
		// network attacker can put "400 PARAM_ERROR" where WeChat Pay
		// said 200. For a state-changing call the outcome is unknown.
		var apiErr *wechatpay.APIError
		if errors.As(err, &apiErr) && !apiErr.Verified && method != http.MethodGet && method != http.MethodHead {
			return &wechatpay.OutcomeUnknownError{Method: method, Path: req.URL.Path, RequestID: apiErr.RequestID, Err: err}
		}
		return err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		// The Transport hands back the verified bytes from memory, so
		// this needs a client without one; still, the answer is lost.
		return wechatpay.ClassifyError(req, fmt.Errorf("wechatpay/%s: reading answer of %s %s: %w", pkg, method, req.URL.Path, err))
	}
	if len(data) > maxAnswer {
		return fmt.Errorf("wechatpay/%s: answer of %s %s exceeds %d bytes", pkg, method, req.URL.Path, maxAnswer)
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		// The call itself succeeded (a verified 2xx): say so, so that
		// nobody repeats a payment or refund because of a decoding bug.
		return fmt.Errorf("wechatpay/%s: %s %s succeeded (HTTP %d, Request-ID %s) but its answer does not decode into %T: %w",
			pkg, method, req.URL.Path, resp.StatusCode, resp.Header.Get(wire.HeaderRequestID), out, err)
	}
	if decrypt {
		err := errNoTransport
		if fields.Key != nil {
			err = decryptAnswer(out, fields.Key)
		}
		if err != nil {
			return fmt.Errorf("wechatpay/%s: %s %s succeeded (HTTP %d, Request-ID %s), but %w",
				pkg, method, req.URL.Path, resp.StatusCode, resp.Header.Get(wire.HeaderRequestID), err)
		}
	}
	return nil
}

// hasMarked reports whether v holds a non-empty string field tagged tag.
func hasMarked(v reflect.Value, tag string) bool {
	if !marked(v.Type(), tag) {
		return false
	}
	found := false
	rewritten(v, tag, "", func(_, s string) (string, error) { found = true; return s, nil })
	return found
}

// builder returns the Build of a request whose in has fields to encrypt:
// in, with those fields encrypted, as the JSON body, or for a GET as the
// query string added to rawURL's own.
func builder(in reflect.Value, inQuery bool, rawURL string) func(func(string) (string, error)) ([]byte, string, error) {
	return func(encrypt func(string) (string, error)) ([]byte, string, error) {
		v, err := rewritten(in, tagEncrypt, "", func(path, s string) (string, error) {
			c, err := encrypt(s)
			if err != nil {
				return "", fmt.Errorf("field %s: %w", path, err)
			}
			return c, nil
		})
		if err != nil {
			return nil, "", err
		}
		if inQuery {
			u, err := withQuery(rawURL, v)
			if err != nil {
				return nil, "", err
			}
			_, q, _ := strings.Cut(u, "?")
			return nil, q, nil
		}
		b, err := json.Marshal(v.Interface())
		return b, "", err
	}
}

// withQuery adds the query parameters of the struct v to rawURL.
func withQuery(rawURL string, v reflect.Value) (string, error) {
	q, err := encodeQuery(v)
	if err != nil || len(q) == 0 {
		return rawURL, err
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	all := u.Query()
	for k, vs := range q {
		all[k] = vs
	}
	u.RawQuery = all.Encode()
	return u.String(), nil
}

func pathOf(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil {
		return u.Path
	}
	return "(bad URL)"
}

// Segment escapes one path parameter (an out_trade_no, a transaction_id,
// an out_refund_no) so that it stays inside its segment: "/" becomes %2F,
// "?" %3F. An empty value and the dot segments "." and "..", which a
// server may resolve against the path, are refused.
func Segment(pkg, name, v string) (string, error) {
	switch v {
	case "":
		return "", fmt.Errorf("wechatpay/"+pkg+": %s is empty", name)
	case ".", "..":
		return "", fmt.Errorf("wechatpay/"+pkg+": %s %q is not a valid number", name, v)
	}
	return url.PathEscape(v), nil
}

// Query encodes query parameters, leaving out empty values.
func Query(kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// Base returns base without its trailing slashes, or the default
// host. Product clients use BaseURL, which also asks the Transport.
func Base(base string) string {
	if base == "" {
		return wechatpay.DefaultBaseURL
	}
	return strings.TrimRight(base, "/")
}

// BaseURL returns where a product client's calls go: base (the client's
// own BaseURL field) without trailing slashes when it is set; otherwise
// the BaseURL of the *wechatpay.Transport that client sends through, so
// that the merchant configures the host once; otherwise
// wechatpay.DefaultBaseURL. The Transport is found in client.Transport
// directly, inside a *wechatpay.Failover, or inside any wrapper (tracing,
// retries, logging) with an Unwrap() http.RoundTripper method.
func BaseURL(client *http.Client, base string) string {
	if base != "" || client == nil {
		return Base(base)
	}
	rt := client.Transport
	// A bound, not a loop on trust: a wrapper may unwrap to itself.
	for range 32 {
		switch t := rt.(type) {
		case *wechatpay.Transport:
			if t != nil {
				return Base(t.BaseURL)
			}
		case *wechatpay.Failover:
			if t != nil {
				rt = t.Transport
				continue
			}
		case interface{ Unwrap() http.RoundTripper }:
			rt = t.Unwrap()
			continue
		}
		break
	}
	return Base("")
}

// Outcome names, in the *wechatpay.OutcomeUnknownError err may hold, the
// business number to query by (name is the field, such as out_bill_no),
// and returns err. A product package calls it on the error of every
// money-moving call.
func Outcome(err error, name, number string) error {
	var unknown *wechatpay.OutcomeUnknownError
	if errors.As(err, &unknown) && unknown.Number == "" {
		unknown.NumberName, unknown.Number = name, number
	}
	return err
}
