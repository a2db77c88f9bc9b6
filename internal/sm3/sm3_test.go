package sm3

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// The two examples of GB/T 32905-2016, Appendix A.
var vectors = []struct{ name, in, want string }{
	{"A.1 abc", "abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"},
	{"A.2 abcd×16", strings.Repeat("abcd", 16), "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"},
}

func TestStandardVectors(t *testing.T) {
	for _, v := range vectors {
		got := Sum([]byte(v.in))
		if hex.EncodeToString(got[:]) != v.want {
			t.Errorf("Sum(%s) = %x; want %s", v.name, got, v.want)
		}
		h := New()
		for i := 0; i < len(v.in); i++ { // byte by byte: the buffering path
			h.Write([]byte{v.in[i]})
		}
		if s := hex.EncodeToString(h.Sum(nil)); s != v.want {
			t.Errorf("New().Write bytewise (%s) = %s; want %s", v.name, s, v.want)
		}
	}
}

// TestSplits checks that any split of the input gives the digest of the
// whole, and that Sum does not disturb the running state, across the
// padding boundaries (55, 56, 64 bytes).
func TestSplits(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 20)
	for n := 0; n <= len(data); n += 7 {
		whole := Sum(data[:n])
		for cut := 0; cut <= n; cut += 13 {
			h := New()
			h.Write(data[:cut])
			_ = h.Sum(nil)
			h.Write(data[cut:n])
			if got := h.Sum(nil); !bytes.Equal(got, whole[:]) {
				t.Fatalf("len %d cut %d: %x; want %x", n, cut, got, whole)
			}
		}
	}
	if Sum(nil) == Sum([]byte{0}) {
		t.Error("the empty message and one zero byte hash alike")
	}
	h := New()
	if h.Size() != Size || h.BlockSize() != BlockSize {
		t.Errorf("Size, BlockSize = %d, %d", h.Size(), h.BlockSize())
	}
}
