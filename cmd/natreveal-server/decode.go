package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/internal/cli"
	"github.com/natreveal/natreveal/reveal"
)

func decodeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "decode FILE",
		Short: "Report the HOST_IDs in a capture (pcap or pcapng), one line each, as observe does",
		Long: `decode reads a capture (pcap, also gzipped, or pcapng; link types Ethernet, raw
IP, Linux cooked SLL and SLL2) and reports what observe would have: the HOST_IDs
of each TCP SYN (without ACK), of the first datagram of each UDP flow
(addresses and ports), and the sender's HIT of each HIP packet.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return cli.UsageErr(fmt.Errorf("decode: want one capture file, got %d arguments", len(args)))
			}
			return nil
		},
	}
	cli.FlagErrorsAreUsage(cmd)
	all := cmd.Flags().Bool("all", false, "also report connections that carry no HOST_ID")
	rf := addRevealFlags(cmd.Flags(), "json")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		d, format, err := rf.decoder()
		if err != nil {
			return err
		}
		w := bufio.NewWriter(cmd.OutOrStdout())
		_, err = decodeFile(args[0], d, *all, format, w)
		if ferr := w.Flush(); err == nil && ferr != nil {
			err = ferr
		}
		return err
	}
	return cmd
}

// packetSource is what decode needs of pcapgo's two readers.
type packetSource interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// decodeFile writes the records of the capture at path to w and returns how
// many. A file that cannot be opened or is no capture is a usage error
// (exit 2). A capture cut short in its last packet (a capture program that
// was killed) ends the report with a warning on stderr, not an error.
func decodeFile(path string, d *reveal.Decoder, all bool, format reveal.Format, w io.Writer) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, cli.UsageErr(fmt.Errorf("decode: %v", err))
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return 0, cli.UsageErr(fmt.Errorf("decode: %s is a directory, not a capture file", path))
	}
	br := bufio.NewReaderSize(f, 1<<16)
	src, linkType, err := openCapture(br)
	if err != nil {
		return 0, cli.UsageErr(fmt.Errorf("decode: %s: %v", path, err))
	}

	var (
		n       int
		buf     []byte
		found   []reveal.Found
		udpSeen = make(map[udpFlow]struct{})
	)
	for i := 1; ; i++ {
		data, ci, err := src.ZeroCopyReadPacketData()
		if err == io.EOF {
			return n, nil
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			fmt.Fprintf(os.Stderr, "natreveal-server: decode: %s: packet %d is cut short (truncated capture); reported the %d packets before it\n", path, i, i-1)
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("decode: %s: packet %d: %w", path, i, err)
		}
		lt := linkType
		if len(ci.AncillaryData) > 0 {
			if l, ok := ci.AncillaryData[0].(layers.LinkType); ok {
				lt = l
			}
		}
		pkt, ok := ipPacket(lt, data)
		if !ok {
			continue
		}
		fl, ok := reveal.ParseFlow(pkt)
		if !ok || !fl.Opening() {
			continue
		}
		if fl.Proto == reveal.ProtoUDP {
			k := udpFlow{fl.Src, fl.Dst, fl.SrcPort, fl.DstPort}
			if _, seen := udpSeen[k]; seen {
				continue
			}
			udpSeen[k] = struct{}{}
		}
		found = d.Decode(pkt, found[:0])
		if len(found) == 0 && all {
			found = append(found, reveal.Found{})
		}
		for _, fd := range found {
			buf = format.AppendLine(buf[:0], reveal.NewRecord(ci.Timestamp, fl, fd))
			if _, err := w.Write(buf); err != nil {
				return n, err
			}
			n++
		}
	}
}

type udpFlow struct {
	src, dst         netip.Addr
	srcPort, dstPort uint16
}

// openCapture picks the reader by the file's magic number: pcapng's Section
// Header Block type, else pcap (pcapgo also reads gzipped pcap).
func openCapture(br *bufio.Reader) (packetSource, layers.LinkType, error) {
	magic, err := br.Peek(4)
	if err != nil {
		return nil, 0, fmt.Errorf("not a pcap or pcapng file (%d bytes)", len(magic))
	}
	if binary.BigEndian.Uint32(magic) == 0x0a0d0d0a { // pcapng SHB block type
		r, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
		if err != nil {
			return nil, 0, fmt.Errorf("pcapng: %v", err)
		}
		return r, r.LinkType(), nil
	}
	r, err := pcapgo.NewReader(br)
	if err != nil {
		return nil, 0, fmt.Errorf("not a pcap or pcapng file: %v", err)
	}
	switch lt := r.LinkType(); lt {
	case layers.LinkTypeEthernet, layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6,
		layers.LinkTypeLinuxSLL, layers.LinkTypeLinuxSLL2, linkTypeRawOpenBSD:
	default:
		return nil, 0, fmt.Errorf("link type %d (%s) is not supported: use Ethernet, raw IP or Linux SLL/SLL2", lt, lt)
	}
	return r, r.LinkType(), nil
}

// linkTypeRawOpenBSD is DLT_RAW's value on some systems (LINKTYPE_RAW is 101).
const linkTypeRawOpenBSD = layers.LinkType(12)

// EtherTypes (IEEE 802; RFC 7042).
const (
	etherTypeIPv4  = 0x0800
	etherTypeIPv6  = 0x86dd
	etherTypeVLAN  = 0x8100 // IEEE 802.1Q
	etherTypeQinQ  = 0x88a8 // IEEE 802.1ad
	etherTypeQinQ2 = 0x9100 // pre-standard QinQ
)

// ipPacket returns the IPv4 or IPv6 packet in a frame of link type lt.
func ipPacket(lt layers.LinkType, frame []byte) ([]byte, bool) {
	var et uint16
	switch lt {
	case layers.LinkTypeRaw, layers.LinkTypeIPv4, layers.LinkTypeIPv6, linkTypeRawOpenBSD:
		return frame, len(frame) > 0 && (frame[0]>>4 == 4 || frame[0]>>4 == 6)
	case layers.LinkTypeEthernet: // dst, src, EtherType, then any 802.1Q tags
		if len(frame) < 14 {
			return nil, false
		}
		et, frame = binary.BigEndian.Uint16(frame[12:]), frame[14:]
		for range 2 {
			if et != etherTypeVLAN && et != etherTypeQinQ && et != etherTypeQinQ2 || len(frame) < 4 {
				break
			}
			et, frame = binary.BigEndian.Uint16(frame[2:]), frame[4:]
		}
	case layers.LinkTypeLinuxSLL: // 16 bytes; protocol (EtherType) at 14
		if len(frame) < 16 {
			return nil, false
		}
		et, frame = binary.BigEndian.Uint16(frame[14:]), frame[16:]
	case layers.LinkTypeLinuxSLL2: // 20 bytes; protocol (EtherType) at 0
		if len(frame) < 20 {
			return nil, false
		}
		et, frame = binary.BigEndian.Uint16(frame[0:]), frame[20:]
	default:
		return nil, false
	}
	switch et {
	case etherTypeIPv4, etherTypeIPv6:
		return frame, len(frame) > 0
	}
	return nil, false
}
