package lab

import (
	"context"
	"fmt"

	nfqueue "github.com/florianl/go-nfqueue/v2"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"
)

// Mangler rewrites the SYNs an inside host sends, before they leave it, to
// play a misbehaving client: it runs an NFQUEUE reader in the client's
// namespace (OUTPUT chain, via iptables-nft's NFQUEUE target).
type Mangler struct {
	l      *Lab
	ns     string
	q      *nfqueue.Nfqueue
	cancel context.CancelFunc
}

// AddOption returns a rewrite that appends the raw TCP option opt (kind,
// length, data) to a SYN, padding with NOPs to a 4-byte boundary.
func AddOption(opt []byte) func([]byte) ([]byte, error) {
	return func(pkt []byte) ([]byte, error) {
		p := gopacket.NewPacket(pkt, layers.LayerTypeIPv4, gopacket.Default)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if ip == nil || tcp == nil {
			return nil, fmt.Errorf("not IPv4/TCP")
		}
		opts := tcp.Options[:0:0]
		for _, o := range tcp.Options {
			if o.OptionType != layers.TCPOptionKindEndList {
				opts = append(opts, o)
			}
		}
		opts = append(opts, layers.TCPOption{OptionType: layers.TCPOptionKind(opt[0]), OptionLength: opt[1], OptionData: opt[2:]})
		tcp.Options = opts
		tcp.Padding = nil
		tcp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			ip, tcp, gopacket.Payload(tcp.Payload))
		return buf.Bytes(), err
	}
}

// NewMangler queues the SYNs of namespace ns to queue num and applies rewrite.
func (l *Lab) NewMangler(ns string, num uint16, rewrite func([]byte) ([]byte, error)) (*Mangler, error) {
	if _, err := l.Exec(ns, "iptables-nft", "-t", "mangle", "-A", "OUTPUT", "-p", "tcp", "--syn",
		"-j", "NFQUEUE", "--queue-num", fmt.Sprint(num)); err != nil {
		return nil, err
	}
	fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	q, err := nfqueue.Open(&nfqueue.Config{NfQueue: num, MaxPacketLen: 0xffff, Copymode: nfqueue.NfQnlCopyPacket,
		AfFamily: unix.AF_INET, NetNS: fd})
	if err != nil {
		return nil, fmt.Errorf("lab: mangler queue: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Mangler{l: l, ns: ns, q: q, cancel: cancel}
	err = q.RegisterWithErrorFunc(ctx, func(a nfqueue.Attribute) int {
		out, err := rewrite(*a.Payload)
		if err != nil {
			q.SetVerdict(*a.PacketID, nfqueue.NfAccept)
			return 0
		}
		q.SetVerdictWithOption(*a.PacketID, nfqueue.NfAccept, nfqueue.WithAlteredPacket(out))
		return 0
	}, func(error) int { return 0 })
	if err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// Close stops the mangler and removes its rule.
func (m *Mangler) Close() {
	m.cancel()
	m.q.Close()
	m.l.Exec(m.ns, "iptables-nft", "-t", "mangle", "-F", "OUTPUT")
}
