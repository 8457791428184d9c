package encoders

import "testing"

func TestChecksumOK(t *testing.T) {
	pkt := build(t, ipHdr(), dataHdr(oNOP(), oNOP(), oTS()), []byte("odd"))
	if !TCPChecksumOK(pkt) || !IPv4ChecksumOK(pkt) {
		t.Fatal("gopacket-built packet does not verify")
	}
	for i := range pkt {
		bad := clone(pkt)
		bad[i] ^= 0x10
		ipOK, tcpOK := IPv4ChecksumOK(bad), TCPChecksumOK(bad)
		if i < 20 && ipOK && i != 2 && i != 3 {
			t.Errorf("IP byte %d flipped: IPv4 checksum still OK", i)
		}
		if i >= 12 && tcpOK {
			t.Errorf("byte %d flipped: TCP checksum still OK", i)
		}
	}
	if TCPChecksumOK(nil) || IPv4ChecksumOK(nil) || TCPChecksumOK(pkt[:30]) {
		t.Error("short input OK")
	}
}
