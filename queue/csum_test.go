package queue

import (
	"encoding/binary"
	"testing"

	"github.com/natreveal/natreveal/packet"
)

// A packet queued with its checksum not ready holds the folded
// pseudo-header sum in the TCP checksum field; finishL4Checksum makes it a
// complete checksum, or for a GSO packet the pseudo-header sum again.
func TestFinishL4Checksum(t *testing.T) {
	pkt := make([]byte, 20+20+1001)
	pkt[0], pkt[8], pkt[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	copy(pkt[12:], []byte{100, 64, 0, 2, 198, 51, 100, 1})
	packet.SetIPv4HeaderChecksum(pkt, 20)
	tcp := pkt[20:]
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 80)
	tcp[12], tcp[13] = 5<<4, packet.FlagACK
	for i := range tcp[20:] {
		tcp[20+i] = byte(i * 13)
	}
	// Partial: the pseudo-header sum, as tcp_v4_send_check leaves it.
	partial := packet.Fold(packet.PseudoSum4(pkt, 6, len(tcp)))
	binary.BigEndian.PutUint16(tcp[16:], partial)
	packet.SetField32(tcp, 4, 12345) // a handler's incremental update on top

	gso := append([]byte(nil), pkt...)
	finishL4Checksum(gso, true)
	if got := binary.BigEndian.Uint16(gso[36:]); got != partial {
		t.Errorf("GSO: checksum field %#04x, want the pseudo-header sum %#04x", got, partial)
	}
	finishL4Checksum(pkt, false)
	if !packet.TCPChecksumOK(pkt) {
		t.Errorf("checksum not complete")
	}
}
