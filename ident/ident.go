// Package ident is an RFC 1413 Identification Protocol responder that runs on
// the NAT and answers with the HOST_ID of the inside host that owns a
// translated connection (RFC 6967 §4.9). A server that got a connection from
// the NAT's public address asks TCP port 113 of that address about the port
// pair; the answer's user-id is the HOST_ID.
//
// This file is the pure wire format: queries and replies are parsed from and
// appended to byte slices, without I/O. server.go holds the TCP side.
package ident

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Port is the well-known ident port (RFC 1413 §2).
const Port = 113

// Limits of RFC 1413 §4 "FORMAL SYNTAX" and its notes on syntax.
const (
	// MaxLineLen bounds a query line, EOL included. RFC 1413 note 2 lets a
	// client abort after 1000 characters without an EOL; the server applies
	// the same bound to what it reads.
	MaxLineLen = 1000
	// MaxUserIDLen: a server SHOULD NOT send more than 512 octets of user-id
	// (note 3; <octet-string> ::= 1*512<octet-characters>).
	MaxUserIDLen = 512
	// MaxTokenLen: <token> ::= 1*64<token-characters> (note 3).
	MaxTokenLen = 64
	// maxDigits: <integer> ::= 1*5<digit>.
	maxDigits = 5
)

// OpSysOther is the opsys for identifiers that are not user names: "OTHER"
// indicates an unformatted string of printable characters, to be used "if the
// user identifier does not meet the constraints" of a normal user
// identification, i.e. something usable as a mail or finger argument (RFC 1413
// §5, USERID). A HOST_ID is such an identifier.
const OpSysOther = "OTHER"

// ErrorType is the <error-type> of an ERROR reply (RFC 1413 §5).
type ErrorType string

// The error types RFC 1413 §5 defines. Non-standard ones must begin with "X".
const (
	// InvalidPort: a port was out of range (1-65535) or not a non-negative
	// integer.
	InvalidPort ErrorType = "INVALID-PORT"
	// NoUser: the connection is not in use or has no identifiable owner.
	NoUser ErrorType = "NO-USER"
	// HiddenUser: the owner is known but not revealed at its request.
	HiddenUser ErrorType = "HIDDEN-USER"
	// UnknownError: any other failure.
	UnknownError ErrorType = "UNKNOWN-ERROR"
)

// ErrInvalidPort is wrapped by ParseQuery's errors; the answer is
// INVALID-PORT.
var ErrInvalidPort = errors.New("ident: invalid port")

// ErrBadReply is wrapped by the errors of ParseReply and AppendReply.
var ErrBadReply = errors.New("ident: bad reply")

// ParseQuery parses one query line "<port-on-server> , <port-on-client>"
// (RFC 1413 §4). port-on-server is the port on the host running the ident
// server (the NAT's public port of the connection asked about), port-on-client
// the querier's own port.
//
// line may end in CR LF, LF alone or nothing. Following note 1 ("be liberal in
// what you accept") spaces and tabs are accepted anywhere except inside a
// number. Each port is 1-5 decimal digits with a value in 1-65535 (§5,
// INVALID-PORT); signs, fractions, other characters and a missing or doubled
// comma are errors wrapping ErrInvalidPort.
//
// On error, serverPort and clientPort still hold each field that is a 1-5
// digit integer up to 65535 (else 0), so that the caller can echo the pair in
// its INVALID-PORT reply (§4: the reply carries "the same pair as the query").
func ParseQuery(line []byte) (serverPort, clientPort uint16, err error) {
	a, b, err := parsePair(trimEOL(line))
	if err == nil {
		if a == 0 || b == 0 {
			err = fmt.Errorf("port 0 is out of range 1-65535: %w", ErrInvalidPort)
		}
	}
	return clampPort(a), clampPort(b), err
}

// AppendQuery appends the query line for the pair, CR LF included, in the
// RFC 1413 §4 example's form "6191, 23".
func AppendQuery(dst []byte, serverPort, clientPort uint16) []byte {
	dst = appendPair(dst, serverPort, clientPort)
	return append(dst, '\r', '\n')
}

// Reply is one response line (RFC 1413 §4, §5). It is an ERROR reply when
// Error is set, else a USERID reply.
type Reply struct {
	ServerPort, ClientPort uint16 // the query's pair, echoed

	Error ErrorType // ERROR reply: its <error-type>

	// USERID reply.
	OpSys   string // <opsys>; "" means OpSysOther
	Charset string // optional <charset>; "" means US-ASCII (§5)
	UserID  string // <user-id>: 1-512 octets, no NUL, CR or LF
}

// HostIDReply answers a query with a HOST_ID rendered as text, under opsys
// OTHER.
func HostIDReply(serverPort, clientPort uint16, hostID string) Reply {
	return Reply{ServerPort: serverPort, ClientPort: clientPort, OpSys: OpSysOther, UserID: hostID}
}

// ErrorReply answers a query with an error.
func ErrorReply(serverPort, clientPort uint16, e ErrorType) Reply {
	return Reply{ServerPort: serverPort, ClientPort: clientPort, Error: e}
}

// Validate reports whether r can be sent as RFC 1413 §4 grammar allows.
func (r Reply) Validate() error {
	if r.Error != "" {
		if err := checkToken(string(r.Error), false); err != nil {
			return fmt.Errorf("error-type: %w", err)
		}
		return nil
	}
	if r.OpSys != "" {
		if err := checkToken(r.OpSys, true); err != nil {
			return fmt.Errorf("opsys: %w", err)
		}
	}
	if r.Charset != "" {
		if err := checkToken(r.Charset, false); err != nil {
			return fmt.Errorf("charset: %w", err)
		}
	}
	return CheckUserID(r.UserID)
}

// CheckUserID reports whether id is a valid <user-id> to send: 1-512 octets
// (§4 note 3), none of them NUL, CR or LF (§5, <octet-characters>).
func CheckUserID(id string) error {
	if len(id) == 0 || len(id) > MaxUserIDLen {
		return fmt.Errorf("user-id is %d octets, want 1-%d: %w", len(id), MaxUserIDLen, ErrBadReply)
	}
	if i := indexForbiddenOctet(id); i >= 0 {
		return fmt.Errorf("user-id octet %d is %#02x (NUL, CR and LF are not allowed): %w", i, id[i], ErrBadReply)
	}
	return nil
}

// AppendReply appends r as a reply line, CR LF included, or returns dst
// unchanged and an error wrapping ErrBadReply when r is not valid.
//
// The form follows the RFC 1413 §4 examples, "6195, 23 : ERROR : NO-USER",
// except that no space follows the colon before a user-id: such spaces "ARE
// part of the identifier string" (§5, USERID), so "6193, 23 : USERID : OTHER
// :1234" carries exactly "1234".
func AppendReply(dst []byte, r Reply) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return dst, err
	}
	dst = appendPair(dst, r.ServerPort, r.ClientPort)
	if r.Error != "" {
		dst = append(dst, " : ERROR : "...)
		dst = append(dst, r.Error...)
		return append(dst, '\r', '\n'), nil
	}
	dst = append(dst, " : USERID : "...)
	if r.OpSys == "" {
		dst = append(dst, OpSysOther...)
	} else {
		dst = append(dst, r.OpSys...)
	}
	if r.Charset != "" {
		dst = append(dst, ',')
		dst = append(dst, r.Charset...)
	}
	dst = append(dst, " :"...)
	dst = append(dst, r.UserID...)
	return append(dst, '\r', '\n'), nil
}

// ParseReply parses one reply line, the querier's side (RFC 1413 §4, §5).
// White space is accepted around every field but the user-id, which is
// everything after the colon that follows the opsys field, up to the EOL
// (note 1), and is returned as is. The pair may be 0-65535: servers echo
// out-of-range queries in INVALID-PORT replies. Errors wrap ErrBadReply.
func ParseReply(line []byte) (Reply, error) {
	line = trimEOL(line)
	var r Reply
	pair, rest, ok := bytes.Cut(line, []byte{':'})
	if !ok {
		return r, fmt.Errorf("no colon after the port pair: %w", ErrBadReply)
	}
	a, b, err := parsePair(pair)
	if err != nil || a > 0xffff || b > 0xffff {
		return r, fmt.Errorf("port pair %.32q: %w", pair, ErrBadReply)
	}
	r.ServerPort, r.ClientPort = uint16(a), uint16(b)

	typ, rest, ok := bytes.Cut(rest, []byte{':'})
	if !ok {
		return r, fmt.Errorf("no colon after the response type: %w", ErrBadReply)
	}
	switch t := trimSpace(typ); {
	case bytes.EqualFold(t, []byte("ERROR")):
		e := trimSpace(rest)
		if err := checkToken(string(e), false); err != nil {
			return r, fmt.Errorf("error-type: %w", err)
		}
		r.Error = ErrorType(e)
		return r, nil
	case bytes.EqualFold(t, []byte("USERID")):
	default:
		return r, fmt.Errorf("response type %.32q: %w", t, ErrBadReply)
	}

	opsys, uid, ok := bytes.Cut(rest, []byte{':'})
	if !ok {
		return r, fmt.Errorf("no colon after the opsys field: %w", ErrBadReply)
	}
	osys, cs, hasCS := bytes.Cut(opsys, []byte{','})
	r.OpSys = string(trimSpace(osys))
	if err := checkToken(r.OpSys, true); err != nil {
		return r, fmt.Errorf("opsys: %w", err)
	}
	if hasCS {
		r.Charset = string(trimSpace(cs))
		if err := checkToken(r.Charset, false); err != nil {
			return r, fmt.Errorf("charset: %w", err)
		}
	}
	// A client MUST accept at least 512 octets (note 3); accept any length.
	if len(uid) == 0 {
		return r, fmt.Errorf("empty user-id: %w", ErrBadReply)
	}
	if i := indexForbiddenOctet(string(uid)); i >= 0 {
		return r, fmt.Errorf("user-id octet %d is %#02x: %w", i, uid[i], ErrBadReply)
	}
	r.UserID = string(uid)
	return r, nil
}

// FormatDecimal renders a HOST_ID in decimal, e.g. "4660".
func FormatDecimal(id uint32) string { return strconv.FormatUint(uint64(id), 10) }

// FormatHex renders a HOST_ID as "0x" and lower-case hex, e.g. "0x1234".
func FormatHex(id uint32) string { return "0x" + strconv.FormatUint(uint64(id), 16) }

// parsePair parses "<integer> , <integer>" with optional white space around
// each integer and returns the values (up to 99999; range checks are the
// caller's). On error each value is its field's if that field is an integer,
// else 0.
func parsePair(p []byte) (a, b uint32, err error) {
	left, right, ok := bytes.Cut(p, []byte{','})
	a, errA := parseInt(left)
	if !ok {
		if errA != nil {
			return 0, 0, fmt.Errorf("no comma in %.32q: %w", p, ErrInvalidPort)
		}
		return a, 0, fmt.Errorf("no comma after %d: %w", a, ErrInvalidPort)
	}
	b, errB := parseInt(right)
	switch {
	case errA != nil:
		return a, b, fmt.Errorf("port-on-server: %w", errA)
	case errB != nil:
		return a, b, fmt.Errorf("port-on-client: %w", errB)
	case a > 0xffff || b > 0xffff:
		return a, b, fmt.Errorf("port %d, %d out of range 1-65535: %w", a, b, ErrInvalidPort)
	}
	return a, b, nil
}

// parseInt parses <integer> ::= 1*5<digit>, white space around it allowed.
func parseInt(f []byte) (uint32, error) {
	f = trimSpace(f)
	if len(f) == 0 || len(f) > maxDigits {
		return 0, fmt.Errorf("%.16q is not 1-%d digits: %w", f, maxDigits, ErrInvalidPort)
	}
	var v uint32
	for _, c := range f {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%.16q is not a non-negative integer: %w", f, ErrInvalidPort)
		}
		v = v*10 + uint32(c-'0')
	}
	return v, nil
}

func clampPort(v uint32) uint16 {
	if v > 0xffff {
		return 0
	}
	return uint16(v)
}

func appendPair(dst []byte, a, b uint16) []byte {
	dst = strconv.AppendUint(dst, uint64(a), 10)
	dst = append(dst, ',', ' ')
	return strconv.AppendUint(dst, uint64(b), 10)
}

// trimEOL drops a trailing LF and the CR before it, if any (<EOL> is CR LF;
// LF alone is accepted).
func trimEOL(p []byte) []byte {
	p = bytes.TrimSuffix(p, []byte{'\n'})
	return bytes.TrimSuffix(p, []byte{'\r'})
}

// trimSpace drops the white space of note 1, spaces and tabs, at both ends.
func trimSpace(p []byte) []byte {
	return bytes.Trim(p, " \t")
}

// checkToken: <token> ::= 1*64<token-characters>, the printable ASCII
// characters minus the colon (§4, FORMAL SYNTAX). In an opsys the comma
// separates the charset, so it is refused there too.
func checkToken(t string, opsys bool) error {
	if len(t) == 0 || len(t) > MaxTokenLen {
		return fmt.Errorf("token is %d characters, want 1-%d: %w", len(t), MaxTokenLen, ErrBadReply)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c <= ' ' || c > '~' || c == ':' || (opsys && c == ',') {
			return fmt.Errorf("token %.16q: character %#02x not allowed: %w", t, c, ErrBadReply)
		}
	}
	return nil
}

func indexForbiddenOctet(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == 0 || c == '\r' || c == '\n' {
			return i
		}
	}
	return -1
}
