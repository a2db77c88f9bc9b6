package middleware

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// algorithmAESGCM is the only resource algorithm supported (docs/protocol.md §4.3).
const algorithmAESGCM = "AEAD_AES_256_GCM"

// envelope is the notification JSON around the encrypted resource.
type envelope struct {
	ID           string           `json:"id"`
	CreateTime   string           `json:"create_time"`
	ResourceType string           `json:"resource_type"`
	EventType    string           `json:"event_type"`
	Summary      string           `json:"summary"`
	Resource     envelopeResource `json:"resource"`
}

type envelopeResource struct {
	OriginalType   string `json:"original_type"`
	Algorithm      string `json:"algorithm"`
	Ciphertext     string `json:"ciphertext"`
	AssociatedData string `json:"associated_data"`
	Nonce          string `json:"nonce"`
}

// parseEnvelope decodes a notification body exactly as json.Unmarshal
// into an envelope would. Notifications as WeChat Pay sends them take a
// fast path that costs a fraction of encoding/json (which would be most
// of the middleware's own time); anything unusual (escapes, unknown or
// differently cased keys, non-string values) goes to encoding/json.
//
// The fields of the result share body's memory: body must not be modified
// afterwards.
func parseEnvelope(body []byte) (envelope, error) {
	var e envelope // on the stack: the slow path decodes into its own
	if parseFast(body, &e) {
		return e, nil
	}
	return parseSlow(body)
}

func parseSlow(body []byte) (envelope, error) {
	var e envelope
	if err := json.Unmarshal(body, &e); err != nil {
		return envelope{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return e, nil
}

// parseFast decodes body into e if it is a JSON object with only the
// envelope's keys, spelled exactly, and plain string values (or null),
// with no escape sequences, and the whole body is valid UTF-8. It reports
// false for anything else, leaving e in any state.
func parseFast(body []byte, e *envelope) bool {
	if !utf8.Valid(body) {
		return false // encoding/json would substitute U+FFFD
	}
	// Fields are substrings of body, not copies: the middleware never
	// modifies a body once read (it hands the handler a reader over it).
	p := scanner{b: body, s: unsafe.String(unsafe.SliceData(body), len(body))}
	ok := p.object(func(key string) bool {
		var dst *string
		switch key {
		case "id":
			dst = &e.ID
		case "create_time":
			dst = &e.CreateTime
		case "resource_type":
			dst = &e.ResourceType
		case "event_type":
			dst = &e.EventType
		case "summary":
			dst = &e.Summary
		case "resource":
			if p.null() {
				return true
			}
			return p.object(func(key string) bool {
				var dst *string
				switch key {
				case "original_type":
					dst = &e.Resource.OriginalType
				case "algorithm":
					dst = &e.Resource.Algorithm
				case "ciphertext":
					dst = &e.Resource.Ciphertext
				case "associated_data":
					dst = &e.Resource.AssociatedData
				case "nonce":
					dst = &e.Resource.Nonce
				default:
					return false
				}
				return p.stringInto(dst)
			})
		default:
			return false
		}
		return p.stringInto(dst)
	})
	p.space()
	return ok && p.i == len(p.s)
}

// scanner reads the small subset of JSON parseFast accepts. b and s hold
// the same bytes.
type scanner struct {
	b []byte
	s string
	i int
}

func (p *scanner) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// consume skips white space and then c, if c is next.
func (p *scanner) consume(c byte) bool {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// null skips white space and then a null literal, if one is next.
func (p *scanner) null() bool {
	p.space()
	if len(p.s)-p.i >= 4 && p.s[p.i:p.i+4] == "null" {
		p.i += 4
		return true
	}
	return false
}

// str reads a string with no escape sequences.
func (p *scanner) str() (string, bool) {
	if !p.consume('"') {
		return "", false
	}
	n := strings.IndexByte(p.s[p.i:], '"')
	if n < 0 || !plain(p.b[p.i:p.i+n]) {
		return "", false
	}
	v := p.s[p.i : p.i+n]
	p.i += n + 1
	return v, true
}

// plain reports whether b has no backslash and no control character
// (below 0x20), testing eight bytes at a time.
func plain(b []byte) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		// A byte of x is below 0x20 or equal to '\\' iff the matching
		// byte of lt or eq has its high bit set (for bytes below 0x80,
		// and bytes from 0x80 are neither).
		lt := (x - ones*0x20) &^ x
		y := x ^ ones*'\\'
		eq := (y - ones) &^ y
		if (lt|eq)&highs != 0 {
			break // look at these bytes one by one
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < 0x20 || c == '\\' {
			return false
		}
	}
	return true
}

// stringInto reads a string into dst; null leaves dst alone, as
// encoding/json does.
func (p *scanner) stringInto(dst *string) bool {
	if p.null() {
		return true
	}
	v, ok := p.str()
	if ok {
		*dst = v
	}
	return ok
}

// object reads an object, calling field for each key to read its value.
func (p *scanner) object(field func(key string) bool) bool {
	if !p.consume('{') {
		return false
	}
	if p.consume('}') {
		return true
	}
	for {
		key, ok := p.str()
		if !ok || !p.consume(':') || !field(key) {
			return false
		}
		if !p.consume(',') {
			return p.consume('}')
		}
	}
}
