// Package gcmstream authenticates and decrypts AES-GCM messages too large
// for memory, at any nonce length, as NIST SP 800-38D defines GCM. Go's
// cipher.AEAD opens a message only whole and in memory; WeChat Pay's
// encrypted bills are one GCM message per file part, up to gigabytes, with
// 16-byte nonces (docs/protocol.md §19). The caller keeps the ciphertext
// somewhere it can read twice (a private temporary file): Verify reads it
// once and checks the tag, and only then does NewReader hand out
// plaintext. Nothing unauthenticated is ever released.
//
// The code follows the specification's algorithms (GHASH with Shoup's
// 4-bit tables, GCTR with inc32) and is checked against crypto/cipher's
// GCM on random messages.
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
func Verify(block cipher.Block, nonce []byte, r io.Reader, size int64) error {
	if err := checkArgs(block, nonce); err != nil {
		return err
	}
	if size < TagSize {
		return ErrAuth
	}
	var h [16]byte
	block.Encrypt(h[:], h[:])
	g := newGHASH(h)
	ctLen := size - TagSize
	buf := make([]byte, 64<<10) // a multiple of 16: only the last block pads
	for left := ctLen; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return err
		}
		g.update(buf[:n])
		left -= n
	}
	var tag [TagSize]byte
	if _, err := io.ReadFull(r, tag[:]); err != nil {
		return err
	}
	var lens [16]byte // len(A) = 0, len(C) in bits
	binary.BigEndian.PutUint64(lens[8:], uint64(ctLen)*8)
	g.block(lens[:])
	s := g.sum()
	j := j0(block, nonce)
	var ej [16]byte
	block.Encrypt(ej[:], j[:])
	subtle.XORBytes(s[:], s[:], ej[:])
	if subtle.ConstantTimeCompare(s[:], tag[:]) != 1 {
		return ErrAuth
	}
	return nil
}

// NewReader returns a reader of the plaintext of the ciphertext r yields
// (the message without its tag). It does not authenticate: call it only
// on a message Verify accepted, read from storage nobody else can write.
func NewReader(block cipher.Block, nonce []byte, r io.Reader) (io.Reader, error) {
	if err := checkArgs(block, nonce); err != nil {
		return nil, err
	}
	c := &ctrReader{block: block, r: r, used: 16}
	c.ctr = j0(block, nonce)
	c.inc()
	return c, nil
}

// ctrReader is GCTR from inc32(J0): the counter's low 32 bits wrap alone.
type ctrReader struct {
	block cipher.Block
	r     io.Reader
	ctr   [16]byte
	ks    [16]byte
	used  int // bytes of ks consumed
}

func (c *ctrReader) inc() {
	binary.BigEndian.PutUint32(c.ctr[12:], binary.BigEndian.Uint32(c.ctr[12:])+1)
}

func (c *ctrReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.xor(p[:n])
	return n, err
}

// xor applies the keystream to b, carrying a partial block over.
func (c *ctrReader) xor(b []byte) {
	if c.used > 0 && c.used < 16 {
		k := subtle.XORBytes(b, b, c.ks[c.used:])
		c.used += k
		b = b[k:]
	}
	for len(b) > 0 {
		c.block.Encrypt(c.ks[:], c.ctr[:])
		c.inc()
		k := subtle.XORBytes(b, b, c.ks[:])
		c.used = k
		b = b[k:]
	}
}
