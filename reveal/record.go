package reveal

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// Record is one Found in one packet, as a report line: `observe`, `decode`
// and `serve` print it as a JSON line (MarshalJSON) or as text (String).
//
//	{"time":"2026-01-02T15:04:05.000000001Z","src":"192.0.2.1:40000","dst_port":80,"proto":"tcp","method":"tcp-option","host_id":"0x0002"}
//	{"time":"2026-01-02T15:04:05Z","src":"2001:db8::1","proto":"hip","method":"hip","host_id":"2001:20::1"}
type Record struct {
	Time time.Time
	// Src is the packet's source; its port is 0 for protocols without
	// ports, and then the JSON "src" is the bare address.
	Src     netip.AddrPort
	DstPort uint16 // 0 (and no JSON "dst_port") without ports
	Proto   string // "tcp", "udp", "hip" or a protocol number
	Method  Method // empty: no HOST_ID found (serve's line for such a connection)
	// HostID is the HOST_ID as text: 0x%04x for 2 bytes, 0x%08x for 4, the
	// HIT as an IPv6 address for hip (RFC 7401 §3: a HIT has IPv6 form).
	HostID string
}

// NewRecord describes f found at time t in a packet of flow fl.
func NewRecord(t time.Time, fl Flow, f Found) Record {
	r := Record{Time: t.UTC(), Proto: ProtoName(fl.Proto), Method: f.Method, HostID: f.String()}
	r.Src = netip.AddrPortFrom(fl.Src, 0)
	if fl.HasPorts() {
		r.Src = netip.AddrPortFrom(fl.Src, fl.SrcPort)
		r.DstPort = fl.DstPort
	}
	return r
}

// String is the HOST_ID as Record.HostID shows it.
func (f Found) String() string {
	switch {
	case f.Method == "":
		return ""
	case f.Method == HIP:
		return netip.AddrFrom16(f.HIT).String()
	case f.Len == 2:
		return fmt.Sprintf("0x%04x", f.HostID)
	case f.Len == 4:
		return fmt.Sprintf("0x%08x", f.HostID)
	}
	return "0x" + strconv.FormatUint(uint64(f.HostID), 16)
}

// recordJSON is Record's JSON layout.
type recordJSON struct {
	Time    time.Time `json:"time"`
	Src     string    `json:"src"`
	DstPort uint16    `json:"dst_port,omitempty"`
	Proto   string    `json:"proto"`
	Method  Method    `json:"method,omitempty"`
	HostID  string    `json:"host_id,omitempty"`
}

// MarshalJSON writes the layout shown on Record.
func (r Record) MarshalJSON() ([]byte, error) {
	return json.Marshal(recordJSON{
		Time: r.Time, Src: r.src(), DstPort: r.DstPort, Proto: r.Proto, Method: r.Method, HostID: r.HostID,
	})
}

// UnmarshalJSON reads the layout MarshalJSON writes.
func (r *Record) UnmarshalJSON(b []byte) error {
	var j recordJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Record{Time: j.Time, DstPort: j.DstPort, Proto: j.Proto, Method: j.Method, HostID: j.HostID}
	if j.Src == "" {
		return nil
	}
	if ap, err := netip.ParseAddrPort(j.Src); err == nil {
		r.Src = ap
		return nil
	}
	a, err := netip.ParseAddr(j.Src)
	if err != nil {
		return fmt.Errorf("reveal: record src %q: %w", j.Src, err)
	}
	r.Src = netip.AddrPortFrom(a, 0)
	return nil
}

func (r Record) src() string {
	if !r.Src.IsValid() {
		return ""
	}
	if r.Src.Port() == 0 && r.DstPort == 0 {
		return r.Src.Addr().String()
	}
	return r.Src.String()
}

// String is the text form of a record, one line without newline:
//
//	2026-01-02T15:04:05.000000001Z tcp 192.0.2.1:40000 -> :80 tcp-option 0x0002
//	2026-01-02T15:04:05Z hip 2001:db8::1 hip 2001:20::1
//	2026-01-02T15:04:05Z tcp 192.0.2.1:40000 -> :80 none
func (r Record) String() string {
	s := r.Time.Format(time.RFC3339Nano) + " " + r.Proto + " " + r.src()
	if r.DstPort != 0 {
		s += " -> :" + strconv.Itoa(int(r.DstPort))
	}
	if r.Method == "" {
		return s + " none"
	}
	return s + " " + string(r.Method) + " " + r.HostID
}

// Format is how a command prints records.
type Format string

const (
	FormatJSON Format = "json"
	FormatText Format = "text"
)

// ParseFormat accepts "json" or "text".
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatJSON, FormatText:
		return f, nil
	}
	return "", fmt.Errorf("format %q: use json or text", s)
}

// AppendLine appends r in format f plus a newline to b.
func (f Format) AppendLine(b []byte, r Record) []byte {
	if f == FormatText {
		return append(append(b, r.String()...), '\n')
	}
	j, _ := r.MarshalJSON() // cannot fail: strings and numbers only
	return append(append(b, j...), '\n')
}
