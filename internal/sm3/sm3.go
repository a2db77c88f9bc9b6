// Package sm3 is the SM3 hash function of GB/T 32905-2016 (the Chinese
// national standard, also ISO/IEC 10118-3:2018), which WeChat Pay asks
// for as the digest of some uploads (the fapiao file's meta,
// docs/protocol.md §19). It is written from the standard's text and
// checked against the standard's own examples; the core module keeps its
// two dependencies.
package sm3

import (
	"encoding/binary"
	"hash"
	"math/bits"
)

// Size is the length of an SM3 digest in bytes; BlockSize is the length
// of the blocks it consumes.
const (
	Size      = 32
	BlockSize = 64
)

// iv is the initial value of the standard (§4.1).
var iv = [8]uint32{0x7380166f, 0x4914b2b9, 0x172442d7, 0xda8a0600, 0xa96f30bc, 0x163138aa, 0xe38dee4d, 0xb0fb0e4e}

// digest is the running state: the chaining value, the unprocessed tail
// of the input and its total length.
type digest struct {
	v   [8]uint32
	buf [BlockSize]byte
	n   int    // bytes in buf
	len uint64 // bytes written in all
}

// New returns a new hash.Hash computing SM3. It is not safe for
// concurrent use, as no hash.Hash is.
func New() hash.Hash {
	d := new(digest)
	d.Reset()
	return d
}

// Sum returns the SM3 digest of data.
func Sum(data []byte) [Size]byte {
	var d digest
	d.Reset()
	d.Write(data)
	return d.checkSum()
}

func (d *digest) Reset() {
	d.v = iv
	d.n = 0
	d.len = 0
}

func (d *digest) Size() int      { return Size }
func (d *digest) BlockSize() int { return BlockSize }

func (d *digest) Write(p []byte) (int, error) {
	n := len(p)
	d.len += uint64(n)
	if d.n > 0 {
		c := copy(d.buf[d.n:], p)
		d.n += c
		p = p[c:]
		if d.n < BlockSize {
			return n, nil
		}
		d.block(d.buf[:])
		d.n = 0
	}
	for len(p) >= BlockSize {
		d.block(p[:BlockSize])
		p = p[BlockSize:]
	}
	d.n = copy(d.buf[:], p)
	return n, nil
}

// Sum appends the digest of what was written to b; d is unchanged.
func (d *digest) Sum(b []byte) []byte {
	d2 := *d
	s := d2.checkSum()
	return append(b, s[:]...)
}

// checkSum pads the message (§5.2: a 1 bit, zeros, the 64-bit bit length)
// and returns the final chaining value.
func (d *digest) checkSum() [Size]byte {
	bitLen := d.len << 3
	var pad [BlockSize + 8]byte
	pad[0] = 0x80
	k := BlockSize - 8 - d.n // room before the length field
	if k <= 0 {
		k += BlockSize
	}
	binary.BigEndian.PutUint64(pad[k:], bitLen)
	d.Write(pad[:k+8])
	if d.n != 0 {
		panic("sm3: padding left a partial block")
	}
	var out [Size]byte
	for i, w := range d.v {
		binary.BigEndian.PutUint32(out[4*i:], w)
	}
	return out
}

func p0(x uint32) uint32 { return x ^ bits.RotateLeft32(x, 9) ^ bits.RotateLeft32(x, 17) }
func p1(x uint32) uint32 { return x ^ bits.RotateLeft32(x, 15) ^ bits.RotateLeft32(x, 23) }

// block runs the compression function CF (§5.3) on one 64-byte block.
func (d *digest) block(b []byte) {
	var w [68]uint32
	for i := 0; i < 16; i++ {
		w[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	for j := 16; j < 68; j++ {
		w[j] = p1(w[j-16]^w[j-9]^bits.RotateLeft32(w[j-3], 15)) ^ bits.RotateLeft32(w[j-13], 7) ^ w[j-6]
	}
	a, bb, c, dd, e, f, g, h := d.v[0], d.v[1], d.v[2], d.v[3], d.v[4], d.v[5], d.v[6], d.v[7]
	for j := 0; j < 64; j++ {
		t := uint32(0x79cc4519)
		if j >= 16 {
			t = 0x7a879d8a
		}
		a12 := bits.RotateLeft32(a, 12)
		ss1 := bits.RotateLeft32(a12+e+bits.RotateLeft32(t, j%32), 7)
		ss2 := ss1 ^ a12
		var ff, gg uint32
		if j < 16 {
			ff = a ^ bb ^ c
			gg = e ^ f ^ g
		} else {
			ff = (a & bb) | (a & c) | (bb & c)
			gg = (e & f) | (^e & g)
		}
		tt1 := ff + dd + ss2 + (w[j] ^ w[j+4])
		tt2 := gg + h + ss1 + w[j]
		dd = c
		c = bits.RotateLeft32(bb, 9)
		bb = a
		a = tt1
		h = g
		g = bits.RotateLeft32(f, 19)
		f = e
		e = p0(tt2)
	}
	d.v[0] ^= a
	d.v[1] ^= bb
	d.v[2] ^= c
	d.v[3] ^= dd
	d.v[4] ^= e
	d.v[5] ^= f
	d.v[6] ^= g
	d.v[7] ^= h
}
