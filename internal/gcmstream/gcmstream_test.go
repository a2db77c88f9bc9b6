package gcmstream

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// TestAgainstStdlib seals random messages with crypto/cipher's GCM at
// several nonce sizes and lengths around block boundaries, and checks
// that Verify accepts them, NewReader recovers the plaintext, and any
// flipped bit is refused.
func TestAgainstStdlib(t *testing.T) {
	key := make([]byte, 32)
	rand.Read(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []int{12, 16, 1, 13, 32} {
		aead, err := cipher.NewGCMWithNonceSize(block, ns)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 100, 65535, 65536, 65537, 200000} {
			nonce := make([]byte, ns)
			rand.Read(nonce)
			pt := make([]byte, n)
			rand.Read(pt)
			msg := aead.Seal(nil, nonce, pt, nil)
			if err := Verify(block, nonce, bytes.NewReader(msg), int64(len(msg))); err != nil {
				t.Fatalf("nonce %d, length %d: Verify = %v", ns, n, err)
			}
			r, err := NewReader(block, nonce, bytes.NewReader(msg[:len(msg)-TagSize]))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(iotestHalf(r))
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("nonce %d, length %d: plaintext differs (%v)", ns, n, err)
			}
			if n > 0 {
				bad := bytes.Clone(msg)
				bad[n/2] ^= 0x10
				if err := Verify(block, nonce, bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, ErrAuth) {
					t.Fatalf("nonce %d, length %d, flipped ciphertext: %v; want ErrAuth", ns, n, err)
				}
			}
			bad := bytes.Clone(msg)
			bad[len(bad)-1] ^= 1
			if err := Verify(block, nonce, bytes.NewReader(bad), int64(len(bad))); !errors.Is(err, ErrAuth) {
				t.Fatalf("nonce %d, length %d, flipped tag: %v; want ErrAuth", ns, n, err)
			}
			other := bytes.Clone(nonce)
			other[0] ^= 1
			if err := Verify(block, other, bytes.NewReader(msg), int64(len(msg))); !errors.Is(err, ErrAuth) {
				t.Fatalf("nonce %d, length %d, other nonce: %v; want ErrAuth", ns, n, err)
			}
		}
	}
}

// iotestHalf reads in odd-sized pieces, so that the keystream crosses
// reads mid-block.
func iotestHalf(r io.Reader) io.Reader { return &oddReader{r} }

type oddReader struct{ r io.Reader }

func (o *oddReader) Read(p []byte) (int, error) {
	if len(p) > 7 {
		p = p[:7]
	}
	return o.r.Read(p)
}

func TestShortAndBadInput(t *testing.T) {
	block, _ := aes.NewCipher(make([]byte, 32))
	if err := Verify(block, []byte("0123456789abcdef"), bytes.NewReader(make([]byte, 15)), 15); !errors.Is(err, ErrAuth) {
		t.Errorf("15-byte message: %v; want ErrAuth", err)
	}
	if err := Verify(block, nil, bytes.NewReader(make([]byte, 32)), 32); err == nil {
		t.Error("empty nonce: no error")
	}
	if err := Verify(block, []byte("n"), bytes.NewReader(make([]byte, 20)), 32); err == nil {
		t.Error("a reader shorter than the size: no error")
	}
}

// TestInc32Wrap checks the keystream across the wrap of the counter's
// low 32 bits against inc32 computed block by block: only those bits
// wrap, the upper 96 stay.
func TestInc32Wrap(t *testing.T) {
	block, _ := aes.NewCipher(make([]byte, 32))
	start := [16]byte{0: 0xaa, 11: 0x07, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xfd}
	const blocks = 6
	want := make([]byte, 0, blocks*16)
	ctr := start
	for range blocks {
		var ks [16]byte
		block.Encrypt(ks[:], ctr[:])
		want = append(want, ks[:]...)
		binary.BigEndian.PutUint32(ctr[12:], binary.BigEndian.Uint32(ctr[12:])+1)
	}
	got := make([]byte, blocks*16)
	r := newCTR(block, bytes.NewReader(got), start)
	if _, err := io.ReadFull(iotestHalf(r), got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("keystream across the wrap:\n%x\nwant\n%x", got, want)
	}
}

func BenchmarkVerify(b *testing.B) {
	block, _ := aes.NewCipher(make([]byte, 32))
	msg := make([]byte, 1<<20+TagSize)
	nonce := []byte("0123456789abcdef")
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		Verify(block, nonce, bytes.NewReader(msg), int64(len(msg)))
	}
}

func BenchmarkStdlibOpen(b *testing.B) { // the in-memory reference, for a paired ratio
	block, _ := aes.NewCipher(make([]byte, 32))
	aead, _ := cipher.NewGCMWithNonceSize(block, 16)
	nonce := []byte("0123456789abcdef")
	msg := aead.Seal(nil, nonce, make([]byte, 1<<20), nil)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		aead.Open(nil, nonce, msg, nil)
	}
}

func BenchmarkDecrypt(b *testing.B) {
	block, _ := aes.NewCipher(make([]byte, 32))
	ct := make([]byte, 1<<20)
	nonce := []byte("0123456789abcdef")
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(ct)))
	for b.Loop() {
		r, _ := NewReader(block, nonce, bytes.NewReader(ct))
		io.CopyBuffer(io.Discard, r, buf)
	}
}
