package test

// Issue 17 items 1 and 2, end to end: crafted packets from an inside host
// through a running daemon must not reach the server with a forged HOST_ID
// or with the inside source address.

import (
	be "encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
)

// forgeBehindMSS rewrites a SYN's option list to MSS (its own), a forged
// RFC 7974 HOST_ID 0xdead, then a malformed option (kind 30, length 1),
// padded with NOPs; the checksums are fixed.
func forgeBehindMSS(pkt []byte) ([]byte, error) {
	if len(pkt) < 40 || pkt[0]>>4 != 4 || pkt[9] != 6 {
		return nil, fmt.Errorf("not IPv4/TCP")
	}
	ihl := int(pkt[0]&0x0f) * 4
	tcpLen := int(pkt[ihl+12]>>4) * 4
	mss := []byte{2, 4, 0x05, 0xb4}
	for i := ihl + 20; i+4 <= ihl+tcpLen; {
		if pkt[i] == 2 && pkt[i+1] == 4 {
			copy(mss, pkt[i:i+4])
			break
		}
		if pkt[i] <= 1 {
			i++
			continue
		}
		i += max(int(pkt[i+1]), 1)
	}
	opts := append(append([]byte{}, mss...), 253, 6, 0x03, 0x48, 0xde, 0xad, 30, 1, 1, 1, 1, 1)
	payload := pkt[ihl+tcpLen:]
	out := append(append(append([]byte{}, pkt[:ihl+20]...), opts...), payload...)
	tcp := out[ihl:]
	tcp[12] = byte((20+len(opts))/4)<<4 | tcp[12]&0x0f
	be.BigEndian.PutUint16(out[2:], uint16(len(out)))
	be.BigEndian.PutUint16(out[10:], 0)
	be.BigEndian.PutUint16(out[10:], ^fold(sum(out[:ihl], 0)))
	be.BigEndian.PutUint16(tcp[16:], 0)
	ps := sum(out[12:20], uint32(6)+uint32(len(tcp)))
	be.BigEndian.PutUint16(tcp[16:], ^fold(sum(tcp, ps)))
	return out, nil
}

func sum(b []byte, s uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(be.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// Item 1: MSS, a forged HOST_ID, then a malformed option. Before, parsing
// stopped at MSS, the encoder failed (tcp-option/bad-header) and the SYN
// reached the server with 0xdead, 20 of 20.
func TestForgedHostIDBehindMalformedOption(t *testing.T) {
	l := newLab(t)
	s := listen(t, l)
	m, err := l.NewMangler(l.C1, 79, forgeBehindMSS)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// Without natreveal the forgery reaches the server: the test can forge.
	if got := connect(t, s, l.C1, "malformed-alone", 0); !got.HasOption || got.OptionID != 0xdead {
		t.Fatalf("the mangler did not forge: server saw %+v", got)
	}
	d := startDaemon(t, l, "--inside", lab.InsidePrefix, "--methods", "tcp-option,ip-id")
	const tries = 3
	for i := 0; i < tries; i++ {
		label := fmt.Sprintf("malformed-%d", i)
		payload := []byte(fmt.Sprintf("%-16s", label))
		_ = lab.Connect(l.C1, srvAddr, payload, 2*time.Second) // refused: times out
	}
	time.Sleep(200 * time.Millisecond)
	for _, x := range s.Seen() {
		if strings.TrimSpace(x.Head) != "malformed-alone" && x.HasOption && x.OptionID == 0xdead {
			t.Errorf("forged HOST_ID reached the server: %+v", x)
		}
	}
	if st := d.stop(t); st["refused-malformed"] < tries {
		t.Errorf("refused-malformed %d, want >= %d: %v", st["refused-malformed"], tries, st)
	}
}

// invalidShapes are TCP and UDP segments conntrack calls invalid, and a
// SYN+FIN with a forged HOST_ID; proto 6 or 17, the transport bytes (the
// kernel adds the IPv4 header). Each has source port sport.
func invalidShapes(sport uint16) []struct {
	name  string
	proto int
	b     []byte
} {
	tcp := func(flags byte, doff int, opts []byte, fix bool) []byte {
		b := make([]byte, 20+len(opts))
		be.BigEndian.PutUint16(b[0:], sport)
		be.BigEndian.PutUint16(b[2:], 8080)
		be.BigEndian.PutUint32(b[4:], 1000)
		b[12], b[13] = byte(doff<<4), flags
		be.BigEndian.PutUint16(b[14:], 64240)
		copy(b[20:], opts)
		if fix {
			src, dst := net.ParseIP("100.64.0.2").To4(), net.ParseIP(lab.ServerAddr).To4()
			ps := sum(append(append([]byte{}, src...), dst...), uint32(6)+uint32(len(b)))
			be.BigEndian.PutUint16(b[16:], ^fold(sum(b, ps)))
		} else {
			be.BigEndian.PutUint16(b[16:], 0x1234) // wrong
		}
		return b
	}
	forged := []byte{2, 4, 0x05, 0xb4, 253, 6, 0x03, 0x48, 0xde, 0xad, 1, 1}
	udp := make([]byte, 8)
	be.BigEndian.PutUint16(udp[0:], sport)
	be.BigEndian.PutUint16(udp[2:], 8080)
	be.BigEndian.PutUint16(udp[4:], 4) // RFC 768: Length >= 8
	return []struct {
		name  string
		proto int
		b     []byte
	}{
		{"data offset past the end", 6, tcp(0x02, 15, nil, true)},
		{"truncated TCP", 6, tcp(0x02, 5, nil, true)[:12]},
		{"bad checksum", 6, tcp(0x02, 5, nil, false)},
		{"SYN+FIN, forged HOST_ID", 6, tcp(0x03, 8, forged, true)},
		{"SYN+RST, forged HOST_ID", 6, tcp(0x06, 8, forged, true)},
		{"UDP length 4", 17, udp},
	}
}

// Item 2: packets conntrack calls invalid (and SYNs with FIN or RST) left
// the NAT with the inside source address, 100 of 100: the steer chain now
// drops them. 100 crafted packets, none may reach the server.
func TestInvalidInsidePacketsDropped(t *testing.T) {
	l := newLab(t)
	type recv struct {
		proto int
		r     *lab.RawReceiver
	}
	var rs []recv
	for _, p := range []int{6, 17} {
		r, err := lab.ListenRaw(l.Srv, p)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rs = append(rs, recv{p, r})
	}
	// arrived counts the crafted packets (source port sport) the server got.
	arrived := func(sport uint16) map[string]int {
		got := map[string]int{}
		for _, r := range rs {
			for {
				b, from, err := r.r.Next(300 * time.Millisecond)
				if err != nil {
					break
				}
				if len(b) >= 2 && be.BigEndian.Uint16(b) == sport {
					got[fmt.Sprintf("proto %d from %v", r.proto, from)]++
				}
			}
		}
		return got
	}
	send := func(sport uint16, rounds int) {
		for i := 0; i < rounds; i++ {
			for _, sh := range invalidShapes(sport) {
				if err := lab.SendRaw(l.C1, lab.ServerAddr, sh.proto, sh.b); err != nil {
					t.Fatalf("%s: %v", sh.name, err)
				}
			}
		}
	}
	// Without natreveal they leave (the test can tell).
	send(40001, 1)
	if got := arrived(40001); len(got) == 0 {
		t.Fatal("without natreveal no crafted invalid packet arrived: the test cannot tell")
	}
	d := startDaemon(t, l, "--inside", lab.InsidePrefix, "--methods", "tcp-option")
	const n = 100
	shapes := len(invalidShapes(0))
	send(40002, (n+shapes-1)/shapes)
	if got := arrived(40002); len(got) != 0 {
		t.Errorf("crafted invalid packets reached the server through natreveal: %v", got)
	}
	d.stop(t)
}
