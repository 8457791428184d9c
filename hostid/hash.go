package hostid

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"

	"github.com/dchest/siphash"
)

// Hash is a keyed SipHash-2-4 of the inside address, truncated to Bits. It
// hides the address from the server (privacy, RFC 7974 §6) while staying
// stable for as long as the host keeps its address and the operator keeps
// the key.
type Hash struct {
	k0, k1 uint64
	bits   int
}

// NewHash builds a Hash from a key file's content: 16 raw bytes, or 32 hex
// digits (surrounding whitespace ignored).
func NewHash(key []byte, bits int) (*Hash, error) {
	k := key
	if t := bytes.TrimSpace(key); len(t) == 32 {
		dec := make([]byte, 16)
		if _, err := hex.Decode(dec, t); err == nil {
			k = dec
		}
	}
	if len(k) != 16 {
		return nil, fmt.Errorf("hash key must be 16 bytes or 32 hex digits, got %d bytes", len(key))
	}
	if bits != 16 && bits != 32 {
		return nil, fmt.Errorf("hash width must be 16 or 32 bits, got %d", bits)
	}
	return &Hash{
		k0:   binary.LittleEndian.Uint64(k[:8]),
		k1:   binary.LittleEndian.Uint64(k[8:]),
		bits: bits,
	}, nil
}

func (h *Hash) HostID(src netip.Addr, _ uint32) (uint32, bool) {
	var b [16]byte
	var in []byte
	if src.Is4() {
		a := src.As4()
		copy(b[:4], a[:])
		in = b[:4]
	} else {
		b = src.As16()
		in = b[:]
	}
	v := siphash.Hash(h.k0, h.k1, in)
	if h.bits == 16 {
		return uint32(v & 0xffff), true
	}
	return uint32(v), true
}

func (h *Hash) Bits() int { return h.bits }
