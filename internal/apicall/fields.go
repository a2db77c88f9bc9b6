package apicall

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wxpaykit/wechatpay/internal/wire"
)

// The struct tags that mark sensitive fields (docs/protocol.md §7). They
// go on string fields, at any depth of structs, pointers and slices:
//
//	UserName string `json:"user_name,omitempty" wechatpay:"encrypt"`
//	PayerPhone string `json:"payer_phone" wechatpay:"decrypt"`
//
// An empty field stays empty.
const (
	tagName    = "wechatpay"
	tagEncrypt = "encrypt"
	tagDecrypt = "decrypt"
)

// marked reports whether t holds a string field tagged tag at any depth.
// The answer is cached per type and tag.
func marked(t reflect.Type, tag string) bool {
	k := markKey{t, tag}
	if v, ok := markCache.Load(k); ok {
		return v.(bool)
	}
	v := markedIn(t, tag, map[reflect.Type]bool{})
	markCache.Store(k, v)
	return v
}

type markKey struct {
	t   reflect.Type
	tag string
}

var markCache sync.Map // markKey → bool

func markedIn(t reflect.Type, tag string, seen map[reflect.Type]bool) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return markedIn(t.Elem(), tag, seen)
	case reflect.Struct:
		if seen[t] {
			return false
		}
		seen[t] = true
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			if f.Tag.Get(tagName) == tag && f.Type.Kind() == reflect.String {
				return true
			}
			if markedIn(f.Type, tag, seen) {
				return true
			}
		}
	}
	return false
}

// fieldFunc rewrites one marked field; path names it by its JSON names
// (receivers[0].name), never by its value.
type fieldFunc func(path, v string) (string, error)

// rewritten returns a copy of v in which every non-empty string field
// tagged tag is replaced by f's answer. Only the structs, pointers and
// slices on the way to a marked field are copied: the caller's value is
// never written.
func rewritten(v reflect.Value, tag, path string, f fieldFunc) (reflect.Value, error) {
	t := v.Type()
	if !marked(t, tag) {
		return v, nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return v, nil
		}
		e, err := rewritten(v.Elem(), tag, path, f)
		if err != nil {
			return v, err
		}
		p := reflect.New(t.Elem())
		p.Elem().Set(e)
		return p, nil
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && v.IsNil() {
			return v, nil
		}
		var out reflect.Value
		if t.Kind() == reflect.Slice {
			out = reflect.MakeSlice(t, v.Len(), v.Len())
		} else {
			out = reflect.New(t).Elem()
		}
		for i := range v.Len() {
			e, err := rewritten(v.Index(i), tag, fmt.Sprintf("%s[%d]", path, i), f)
			if err != nil {
				return v, err
			}
			out.Index(i).Set(e)
		}
		return out, nil
	case reflect.Struct:
		out := reflect.New(t).Elem()
		out.Set(v)
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			p := joinPath(path, jsonName(sf))
			fv := v.Field(i)
			if sf.Tag.Get(tagName) == tag && sf.Type.Kind() == reflect.String {
				if fv.String() == "" {
					continue
				}
				s, err := f(p, fv.String())
				if err != nil {
					return v, err
				}
				out.Field(i).SetString(s)
				continue
			}
			e, err := rewritten(fv, tag, p, f)
			if err != nil {
				return v, err
			}
			out.Field(i).Set(e)
		}
		return out, nil
	}
	return v, nil
}

// decryptAnswer decrypts every non-empty field tagged decrypt in the
// answer out points to, with key: the walk that encrypts requests,
// whose result replaces the call's own answer.
func decryptAnswer(out any, key crypto.Signer) error {
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil
	}
	d, err := rewritten(v.Elem(), tagDecrypt, "", func(path, ct string) (string, error) {
		return decryptField(key, path, ct)
	})
	if err != nil {
		return err
	}
	v.Elem().Set(d)
	return nil
}

// decryptField decrypts one Base64 RSA-OAEP (SHA-1) field. Its errors
// name the field, never its content.
func decryptField(key crypto.Signer, path, ciphertext string) (string, error) {
	d, ok := key.(crypto.Decrypter)
	if !ok {
		return "", fmt.Errorf("the answer's field %s is encrypted, and the merchant's private key (%T) cannot decrypt: it signs only (a KMS key?); give the Transport a key that implements crypto.Decrypter", path, key)
	}
	ct, err := base64.StdEncoding.DecodeString(ciphertext)
	if err != nil {
		return "", fmt.Errorf("the answer's field %s is not Base64", path)
	}
	if _, ok := key.(*rsa.PrivateKey); ok && wire.SHA1Refused() {
		return "", wire.ErrFIPSOnly("decrypt", "RSA-OAEP with SHA-1")
	}
	pt, err := d.Decrypt(rand.Reader, ct, &rsa.OAEPOptions{Hash: crypto.SHA1})
	if err != nil {
		return "", fmt.Errorf("the answer's field %s does not decrypt with the merchant's private key (wrong key, or altered)", path)
	}
	return string(pt), nil
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// jsonName is the name encoding/json gives the field.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

// encodeQuery encodes the top-level fields of the struct v (or *struct)
// as a query string, named by their json tags; zero values and fields
// tagged json:"-" are left out. Strings, integers, booleans and
// time.Time (RFC 3339) are allowed.
func encodeQuery(v reflect.Value) (url.Values, error) {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return url.Values{}, nil
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil, fmt.Errorf("query parameters must be a struct, not %s", v.Type())
	}
	q := url.Values{}
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() || sf.Tag.Get("json") == "-" {
			continue
		}
		fv := v.Field(i)
		if fv.IsZero() {
			continue
		}
		name := jsonName(sf)
		switch x := fv.Interface().(type) {
		case time.Time:
			q.Set(name, x.Format(time.RFC3339))
			continue
		}
		switch fv.Kind() {
		case reflect.String:
			q.Set(name, fv.String())
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			q.Set(name, strconv.FormatInt(fv.Int(), 10))
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			q.Set(name, strconv.FormatUint(fv.Uint(), 10))
		case reflect.Bool:
			q.Set(name, strconv.FormatBool(fv.Bool()))
		default:
			return nil, fmt.Errorf("query parameter %s: %s is not a string, integer, boolean or time", name, fv.Type())
		}
	}
	return q, nil
}

var errNoTransport = errors.New("this client's Transport did not carry out the sensitive-field step: use a *wechatpay.Transport (wrapping transports are fine)")
