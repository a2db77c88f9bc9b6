package middleware

import (
	"encoding/json"
	"testing"
)

const sampleEnvelope = `{"id":"EV-2018022511223320873","create_time":"2015-05-20T13:29:35+08:00",
 "resource_type":"encrypt-resource","event_type":"TRANSACTION.SUCCESS","summary":"支付成功",
 "resource":{"original_type":"transaction","algorithm":"AEAD_AES_256_GCM",
             "ciphertext":"c2VjcmV0","associated_data":"","nonce":"abcdefabcdef"}}`

func TestParseFastTakesWeChatPayJSON(t *testing.T) {
	var e envelope
	if !parseFast([]byte(sampleEnvelope), &e) {
		t.Fatal("parseFast refused WeChat Pay's sample notification")
	}
	want := envelope{
		ID: "EV-2018022511223320873", CreateTime: "2015-05-20T13:29:35+08:00", ResourceType: "encrypt-resource",
		EventType: "TRANSACTION.SUCCESS", Summary: "支付成功",
		Resource: envelopeResource{OriginalType: "transaction", Algorithm: "AEAD_AES_256_GCM", Ciphertext: "c2VjcmV0", Nonce: "abcdefabcdef"},
	}
	if e != want {
		t.Errorf("parseFast = %+v; want %+v", e, want)
	}
}

func TestParseEnvelopeFallsBack(t *testing.T) {
	tests := []struct {
		body string
		id   string
		ok   bool
	}{
		{`{"ID":"a"}`, "a", true},                              // keys match case-insensitively in encoding/json
		{`{"id":"a\u0062"}`, "ab", true},                       // escapes
		{`{"id":"a","extra":[1,{"x":null}]}`, "a", true},       // unknown keys
		{`{"id":"a","id":"b"}`, "b", true},                     // the last duplicate wins
		{`{"id":null}`, "", true},                              // null leaves the field alone
		{`{"id":"a"} x`, "", false},                            // trailing garbage
		{`{"id":1}`, "", false},                                // wrong type
		{`{"id":"a",}`, "", false},                             // trailing comma
		{"{\"id\":\"a\x01\"}", "", false},                      // control character
		{`[]`, "", false},                                      // not an object
		{"{\"id\":\"\xff\"}", "\ufffd", true},                  // invalid UTF-8 is replaced
		{`{"resource":{"nonce":"n"},"resource":{}}`, "", true}, // objects merge
	}
	for _, tc := range tests {
		e, err := parseEnvelope([]byte(tc.body))
		if (err == nil) != tc.ok || (err == nil && e.ID != tc.id) {
			t.Errorf("parseEnvelope(%q) = %q, %v; want %q, ok %t", tc.body, e.ID, err, tc.id, tc.ok)
		}
	}
	if e, _ := parseEnvelope([]byte(`{"resource":{"nonce":"n"},"resource":{}}`)); e.Resource.Nonce != "n" {
		t.Errorf("duplicate resource objects: nonce %q; want n kept, as encoding/json does", e.Resource.Nonce)
	}
}

// FuzzParseEnvelope checks that whenever the fast path accepts a body,
// encoding/json accepts it too and decodes the same envelope.
func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(sampleEnvelope))
	f.Add([]byte(`{"id":"a","resource":null}`))
	f.Add([]byte(`{"id":"a\"b"}`))
	f.Add([]byte(` { "summary" : "x" } `))
	f.Add([]byte(`{"resource":{"nonce":null,"algorithm":"x"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast envelope
		if !parseFast(body, &fast) {
			return
		}
		var slow envelope
		if err := json.Unmarshal(body, &slow); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json refuses it: %v", body, err)
		}
		if fast != slow {
			t.Fatalf("fast path decoded %q as %+v; encoding/json as %+v", body, fast, slow)
		}
	})
}
