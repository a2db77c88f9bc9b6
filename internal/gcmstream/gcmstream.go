// Package gcmstream authenticates and decrypts AES-GCM messages too large
// for memory, at any nonce length, as NIST SP 800-38D defines GCM. Go's
// cipher.AEAD opens a message only whole and in memory; WeChat Pay's
// encrypted bills are one GCM message per file part, up to gigabytes, with
// 16-byte nonces (docs/protocol.md §19). The caller keeps the ciphertext
// somewhere it can read twice (a private temporary file): Verify reads it
// once and checks the tag, and only then does NewReader hand out
// plaintext. Nothing unauthenticated is ever released.
//
// The heavy work is crypto/cipher's (its GCM computes GHASH over each
// chunk, its CTR mode the keystream), so both passes run at the standard
// library's speed, with hardware AES and GHASH where the CPU has them;
// this package adds the specification's glue (GHASH chunks combined by
// field products, J0 for any nonce length, inc32 at the 64 GiB wrap) and
// is checked against crypto/cipher's GCM on random messages.
package gcmstream

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"io"
)

// TagSize is the size of the authentication tag, the last bytes of a
// message.
const TagSize = 16

// ErrAuth means the tag does not match: wrong key or nonce, or the
// ciphertext was changed.
var ErrAuth = errors.New("gcmstream: message authentication failed")

// elem is an element of GF(2^128) in the specification's bit order: the
// coefficient of x^0 is the most significant bit of hi.
type elem struct{ hi, lo uint64 }

// mulX4 returns e·x^4: a right shift by four bits, the bits that fall off
// reduced by the field polynomial.
func mulX4(e elem) elem {
	r := reduce4[e.lo&0xf]
	return elem{hi: e.hi>>4 ^ r, lo: e.lo>>4 | e.hi<<60}
}

// reduce4[b] is what (0, b)·x^4 leaves in hi, b being the four bits
// shifted out of lo.
var reduce4 = func() (t [16]uint64) {
	for b := range uint64(16) {
		e := elem{0, b}
		for range 4 {
			e = mulX(e)
		}
		t[b] = e.hi
	}
	return t
}()

// mulX returns e·x (SP 800-38D Algorithm 1's step: shift right, reduce
// by R = 11100001 || 0^120 when a bit falls off).
func mulX(e elem) elem {
	carry := e.lo & 1
	e.lo = e.lo>>1 | e.hi<<63
	e.hi >>= 1
	if carry != 0 {
		e.hi ^= 0xe1 << 56
	}
	return e
}

// ghash is the GHASH function keyed with H, fed block by block.
type ghash struct {
	table [16]elem // table[n] = n·H, n a 4-bit polynomial, x^0 its top bit
	y     elem
}

func newGHASH(h [16]byte) *ghash {
	g := &ghash{}
	hv := elem{binary.BigEndian.Uint64(h[:8]), binary.BigEndian.Uint64(h[8:])}
	g.table[8] = hv
	g.table[4] = mulX(g.table[8])
	g.table[2] = mulX(g.table[4])
	g.table[1] = mulX(g.table[2])
	for n := 3; n < 16; n++ {
		if n&(n-1) != 0 { // not a power of two: the sum of its bits
			hiBit := 8
			for n&hiBit == 0 {
				hiBit >>= 1
			}
			g.table[n] = elem{g.table[hiBit].hi ^ g.table[n^hiBit].hi, g.table[hiBit].lo ^ g.table[n^hiBit].lo}
		}
	}
	return g
}

// block folds one 16-byte block into the running value: y = (y ⊕ b)·H.
func (g *ghash) block(b []byte) {
	x := elem{g.y.hi ^ binary.BigEndian.Uint64(b[:8]), g.y.lo ^ binary.BigEndian.Uint64(b[8:16])}
	var z elem
	// Horner over the 32 nibbles, the last (highest powers of x) first.
	for i := 0; i < 16; i++ {
		n := x.lo >> (4 * i) & 0xf
		z = mulX4(z)
		z.hi ^= g.table[n].hi
		z.lo ^= g.table[n].lo
	}
	for i := 0; i < 16; i++ {
		n := x.hi >> (4 * i) & 0xf
		z = mulX4(z)
		z.hi ^= g.table[n].hi
		z.lo ^= g.table[n].lo
	}
	g.y = z
}

// update feeds data, zero-padding a final partial block.
func (g *ghash) update(data []byte) {
	for len(data) >= 16 {
		g.block(data[:16])
		data = data[16:]
	}
	if len(data) > 0 {
		var pad [16]byte
		copy(pad[:], data)
		g.block(pad[:])
	}
}

func (g *ghash) sum() [16]byte {
	var out [16]byte
	binary.BigEndian.PutUint64(out[:8], g.y.hi)
	binary.BigEndian.PutUint64(out[8:], g.y.lo)
	return out
}

// j0 derives the pre-counter block from the nonce (SP 800-38D §7.1 step 2).
func j0(block cipher.Block, nonce []byte) [16]byte {
	var j [16]byte
	if len(nonce) == 12 {
		copy(j[:], nonce)
		j[15] = 1
		return j
	}
	var h [16]byte
	block.Encrypt(h[:], h[:])
	g := newGHASH(h)
	g.update(nonce)
	var lens [16]byte
	binary.BigEndian.PutUint64(lens[8:], uint64(len(nonce))*8)
	g.block(lens[:])
	return g.sum()
}

func checkArgs(block cipher.Block, nonce []byte) error {
	if block == nil || block.BlockSize() != 16 {
		return errors.New("gcmstream: need a 128-bit block cipher")
	}
	if len(nonce) == 0 {
		return errors.New("gcmstream: empty nonce")
	}
	return nil
}

// Verify reads a whole message (ciphertext then the 16-byte tag) of size
// bytes from r and returns nil if its tag is right for block, nonce and
// empty additional data; ErrAuth if not. It releases nothing.
//
// GHASH over the ciphertext is computed chunk by chunk with the standard
// library's GCM, which has hardware GHASH where the CPU offers it: sealing
// an empty message with a chunk C as additional data under a fixed
// 12-byte nonce n gives E(J0(n)) ⊕ (G(C) ⊕ L)·H, where G(C) is GHASH's
// running value after C and L the length block. GHASH is Horner's rule,
// so chunks combine as Z' = Z·H^m ⊕ T ⊕ L·H with Z = Y·H, m the chunk's
// blocks and T the sealed tag without E(J0(n)): a few field products per
// chunk in software, the rest at the speed of crypto/cipher.
func Verify(block cipher.Block, nonce []byte, r io.Reader, size int64) error {
	if err := checkArgs(block, nonce); err != nil {
		return err
	}
	if size < TagSize {
		return ErrAuth
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	var h, ej, zero12 [16]byte
	block.Encrypt(h[:], h[:])
	hv := load(h[:])
	j := [16]byte{15: 1} // J0 of the all-zero 12-byte nonce
	block.Encrypt(ej[:], j[:])
	ejv := load(ej[:])

	const chunk = 64 << 10 // a multiple of 16: only the last chunk pads
	hFull := pow(hv, chunk/16)
	lh := func(n int) elem { return mul(elem{uint64(n) * 8, 0}, hv) }
	lhFull := lh(chunk)

	ctLen := size - TagSize
	buf := make([]byte, chunk)
	tagBuf := make([]byte, 0, 16)
	var z elem // Y·H
	for left := ctLen; left > 0; {
		n := int64(chunk)
		if left < n {
			n = left
		}
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return err
		}
		t := load(aead.Seal(tagBuf[:0], zero12[:12], nil, buf[:n]))
		t = xor(t, ejv)
		hm, l := hFull, lhFull
		if n != chunk {
			hm, l = pow(hv, int((n+15)/16)), lh(int(n))
		}
		z = xor(xor(mul(z, hm), t), l)
		left -= n
	}
	var tag [TagSize]byte
	if _, err := io.ReadFull(r, tag[:]); err != nil {
		return err
	}
	// S = (Y ⊕ L(C))·H = Z ⊕ L(C)·H; the tag is E(J0) ⊕ S.
	s := xor(z, mul(elem{0, uint64(ctLen) * 8}, hv))
	j0v := j0(block, nonce)
	var e [16]byte
	block.Encrypt(e[:], j0v[:])
	s = xor(s, load(e[:]))
	var want [16]byte
	binary.BigEndian.PutUint64(want[:8], s.hi)
	binary.BigEndian.PutUint64(want[8:], s.lo)
	if subtle.ConstantTimeCompare(want[:], tag[:]) != 1 {
		return ErrAuth
	}
	return nil
}

func load(b []byte) elem {
	return elem{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:16])}
}

func xor(a, b elem) elem { return elem{a.hi ^ b.hi, a.lo ^ b.lo} }

// mul is the product in GF(2^128) (SP 800-38D Algorithm 1).
func mul(a, b elem) elem {
	var z elem
	v := b
	for i := 0; i < 128; i++ {
		var bit uint64
		if i < 64 {
			bit = a.hi >> (63 - i) & 1
		} else {
			bit = a.lo >> (127 - i) & 1
		}
		if bit == 1 {
			z = xor(z, v)
		}
		v = mulX(v)
	}
	return z
}

// pow returns h^m, m ≥ 0.
func pow(h elem, m int) elem {
	r := elem{1 << 63, 0} // the field's 1: the coefficient of x^0
	for ; m > 0; m >>= 1 {
		if m&1 == 1 {
			r = mul(r, h)
		}
		h = mul(h, h)
	}
	return r
}

// NewReader returns a reader of the plaintext of the ciphertext r yields
// (the message without its tag). It does not authenticate: call it only
// on a message Verify accepted, read from storage nobody else can write.
func NewReader(block cipher.Block, nonce []byte, r io.Reader) (io.Reader, error) {
	if err := checkArgs(block, nonce); err != nil {
		return nil, err
	}
	start := j0(block, nonce)
	binary.BigEndian.PutUint32(start[12:], binary.BigEndian.Uint32(start[12:])+1) // inc32
	return newCTR(block, r, start), nil
}

// ctrReader is GCTR from inc32(J0): the counter's low 32 bits wrap
// alone. cipher.NewCTR increments all 128 bits, which is the same until
// the low 32 bits wrap; the reader starts a new stream at each wrap (every
// 64 GiB), so it runs at crypto/cipher's speed.
type ctrReader struct {
	block   cipher.Block
	r       io.Reader
	next    [16]byte // the counter the next stream starts at
	stream  cipher.Stream
	segLeft uint64 // bytes of keystream left before the low 32 bits wrap
}

func newCTR(block cipher.Block, r io.Reader, start [16]byte) *ctrReader {
	return &ctrReader{block: block, r: r, next: start}
}

func (c *ctrReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.xor(p[:n])
	return n, err
}

// xor applies the keystream to b.
func (c *ctrReader) xor(b []byte) {
	for len(b) > 0 {
		if c.segLeft == 0 {
			low := binary.BigEndian.Uint32(c.next[12:])
			c.stream = cipher.NewCTR(c.block, c.next[:])
			c.segLeft = (1<<32 - uint64(low)) * 16
			binary.BigEndian.PutUint32(c.next[12:], 0)
		}
		k := uint64(len(b))
		if k > c.segLeft {
			k = c.segLeft
		}
		c.stream.XORKeyStream(b[:k], b[:k])
		c.segLeft -= k
		b = b[k:]
	}
}
