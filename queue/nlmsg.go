package queue

import "encoding/binary"

// The nfnetlink_queue wire format (include/uapi/linux/netfilter/
// nfnetlink_queue.h, nfnetlink.h, linux/netlink.h): pure encoding and
// decoding, no syscalls, no allocations.

// Netlink message header (struct nlmsghdr), host byte order.
const (
	nlmsgHdrLen  = 16
	nlmsgError   = 0x2 // NLMSG_ERROR
	nlmFRequest  = 0x1 // NLM_F_REQUEST
	nlmFAck      = 0x4 // NLM_F_ACK
	nfgenHdrLen  = 4   // struct nfgenmsg: family, version, res_id (big endian)
	nlaHdrLen    = 4   // struct nlattr: len, type (host byte order)
	nlaTypeMask  = 0x3fff
	nfnlSubsysQ  = 3 // NFNL_SUBSYS_QUEUE
	nfqnlMsgPkt  = nfnlSubsysQ<<8 | 0
	nfqnlMsgVerd = nfnlSubsysQ<<8 | 1
	nfqnlMsgCfg  = nfnlSubsysQ<<8 | 2
)

// enum nfqnl_attr_type.
const (
	nfqaPacketHdr  = 1  // struct nfqnl_msg_packet_hdr {__be32 packet_id; __be16 hw_protocol; __u8 hook}
	nfqaVerdictHdr = 2  // struct nfqnl_msg_verdict_hdr {__be32 verdict; __be32 id}
	nfqaMark       = 3  // __be32
	nfqaInDev      = 5  // __be32 ifindex
	nfqaOutDev     = 6  // __be32 ifindex
	nfqaPayload    = 10 // the packet from its network header
	nfqaCapLen     = 13 // __be32: the packet's length when the copy was cut short
	nfqaSkbInfo    = 14 // __be32: NFQA_SKB_* flags
)

// NFQA_SKB_INFO flags (enum nfqnl_attr_type, NFQA_SKB_*). With
// NFQA_CFG_F_GSO the kernel queues GSO packets whole and leaves a checksum
// that is not ready as it is: CSUMNOTREADY (CHECKSUM_PARTIAL) means the
// TCP/UDP checksum field holds only the pseudo-header sum, to be completed
// when the packet leaves.
const (
	skbCsumNotReady = 1 << 0 // NFQA_SKB_CSUMNOTREADY
	skbGSO          = 1 << 1 // NFQA_SKB_GSO
)

// Configuration attributes (enum nfqnl_attr_config) and commands.
const (
	nfqaCfgCmd    = 1 // struct nfqnl_msg_config_cmd {__u8 command; __u8 _pad; __be16 pf}
	nfqaCfgParams = 2 // struct nfqnl_msg_config_params {__be32 copy_range; __u8 copy_mode} (packed)
	nfqaCfgMaxLen = 3 // __be32
	nfqaCfgMask   = 4 // __be32
	nfqaCfgFlags  = 5 // __be32
	cfgCmdBind    = 1 // NFQNL_CFG_CMD_BIND
	copyPacket    = 2 // NFQNL_COPY_PACKET
	cfgFailOpen   = 1 // NFQA_CFG_F_FAIL_OPEN
	cfgGSO        = 4 // NFQA_CFG_F_GSO: queue GSO packets whole, checksums as they are
)

// Verdicts (NF_DROP, NF_ACCEPT).
const (
	nfDrop   = 0
	nfAccept = 1
)

func align4(n int) int { return (n + 3) &^ 3 }

// pktMsg is what a queued-packet message (NFQNL_MSG_PACKET) says.
type pktMsg struct {
	id        uint32
	hasID     bool
	meta      Meta
	off, n    int  // the payload is msg[off:off+n]
	truncated bool // NFQA_CAP_LEN: the kernel copied only part of the packet
}

// nextMsg splits the first netlink message off b: its type, its body (after
// the header), and the rest of b. ok is false when b holds no whole message.
func nextMsg(b []byte) (typ uint16, body, rest []byte, ok bool) {
	if len(b) < nlmsgHdrLen {
		return 0, nil, nil, false
	}
	l := int(binary.NativeEndian.Uint32(b))
	if l < nlmsgHdrLen || l > len(b) {
		return 0, nil, nil, false
	}
	typ = binary.NativeEndian.Uint16(b[4:])
	body = b[nlmsgHdrLen:l]
	if a := align4(l); a < len(b) {
		rest = b[a:]
	}
	return typ, body, rest, true
}

// parsePacket reads the attributes of a packet message body (nfgenmsg and
// attributes). off is relative to body. ok reports a packet id to answer.
func parsePacket(body []byte) (p pktMsg, ok bool) {
	if len(body) < nfgenHdrLen {
		return p, false
	}
	for i := nfgenHdrLen; i+nlaHdrLen <= len(body); {
		l := int(binary.NativeEndian.Uint16(body[i:]))
		t := binary.NativeEndian.Uint16(body[i+2:]) & nlaTypeMask
		if l < nlaHdrLen || i+l > len(body) {
			// Cut short (never with copy range < the read buffer): the
			// packet can only be let go unchanged.
			p.truncated = true
			break
		}
		v := body[i+nlaHdrLen : i+l]
		switch t {
		case nfqaPacketHdr:
			if len(v) >= 4 {
				p.id, p.hasID = binary.BigEndian.Uint32(v), true
			}
		case nfqaMark:
			if len(v) >= 4 {
				p.meta.Mark = binary.BigEndian.Uint32(v)
			}
		case nfqaInDev:
			if len(v) >= 4 {
				p.meta.InIf = binary.BigEndian.Uint32(v)
			}
		case nfqaOutDev:
			if len(v) >= 4 {
				p.meta.OutIf = binary.BigEndian.Uint32(v)
			}
		case nfqaPayload:
			p.off, p.n = i+nlaHdrLen, len(v)
		case nfqaCapLen:
			p.truncated = true
		case nfqaSkbInfo:
			if len(v) >= 4 {
				f := binary.BigEndian.Uint32(v)
				p.meta.GSO = f&skbGSO != 0
				p.meta.csumNotReady = f&skbCsumNotReady != 0
			}
		}
		i += align4(l)
	}
	return p, p.hasID
}

// appendMsgHdr appends a netlink and nfgenmsg header for queue num with a
// zero length; finishMsg fills it in.
func appendMsgHdr(b []byte, typ, flags uint16, seq uint32, num uint16) []byte {
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0) // port id: the kernel
	b = append(b, 0, 0)                        // AF_UNSPEC, NFNETLINK_V0
	return binary.BigEndian.AppendUint16(b, num)
}

// finishMsg sets the length of the message that starts at b[start:].
func finishMsg(b []byte, start int) {
	binary.NativeEndian.PutUint32(b[start:], uint32(len(b)-start))
}

// appendAttr appends an attribute, padded to 4 bytes.
func appendAttr(b []byte, typ uint16, v ...byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(nlaHdrLen+len(v)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func appendAttrU32(b []byte, typ uint16, v uint32) []byte {
	b = binary.NativeEndian.AppendUint16(b, nlaHdrLen+4)
	b = binary.NativeEndian.AppendUint16(b, typ)
	return binary.BigEndian.AppendUint32(b, v)
}

// appendVerdict appends one NFQNL_MSG_VERDICT for packet id of queue num:
// accept (or drop), the mark when setMark, and pkt as the new packet when
// it is not nil. Several verdicts go to the kernel in one send.
func appendVerdict(b []byte, num uint16, id uint32, verdict uint32, setMark bool, mark uint32, pkt []byte) []byte {
	start := len(b)
	b = appendMsgHdr(b, nfqnlMsgVerd, nlmFRequest, 0, num)
	b = binary.NativeEndian.AppendUint16(b, nlaHdrLen+8)
	b = binary.NativeEndian.AppendUint16(b, nfqaVerdictHdr)
	b = binary.BigEndian.AppendUint32(b, verdict)
	b = binary.BigEndian.AppendUint32(b, id)
	if setMark {
		b = appendAttrU32(b, nfqaMark, mark)
	}
	if pkt != nil {
		b = appendAttr(b, nfqaPayload, pkt...)
	}
	finishMsg(b, start)
	return b
}

// appendVerdictRef is appendVerdict for a payload that is not copied: the
// message ends with the NFQA_PAYLOAD attribute header, and its length counts
// plen payload bytes and their padding, which the sender gathers from where
// they are (verdicts.send).
func appendVerdictRef(b []byte, num uint16, id uint32, setMark bool, mark uint32, plen int) []byte {
	start := len(b)
	b = appendVerdict(b, num, id, nfAccept, setMark, mark, nil)
	b = binary.NativeEndian.AppendUint16(b, uint16(nlaHdrLen+plen))
	b = binary.NativeEndian.AppendUint16(b, nfqaPayload)
	binary.NativeEndian.PutUint32(b[start:], uint32(len(b)-start+align4(plen)))
	return b
}

// nlError returns the error code of an NLMSG_ERROR body (0: an ack).
func nlError(body []byte) int32 {
	if len(body) < 4 {
		return 0
	}
	return int32(binary.NativeEndian.Uint32(body))
}
