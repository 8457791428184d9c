package ident

import (
	"bytes"
	"errors"
	"testing"
)

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"6191, 23\r\n",         // RFC 1413 §4 example
		"6191,23",              // no white space, no EOL
		" \t1 ,\t65535 \n",     // white space around tokens, LF alone (note 1)
		"00080, 00001\r\n",     // five digits, leading zeros
		"0, 23\r\n",            // port 0: INVALID-PORT
		"65536, 23\r\n",        // above 65535
		"99999,99999",          // largest 5-digit integers
		"123456, 1",            // six digits
		"-1, 1",                // negative
		"1.5, 2",               // real
		"8 0, 23",              // white space inside a token
		"80 23",                // missing comma
		"80, 23, 24",           // two commas
		"80, 23\r\r\n",         // stray CR
		"80, 23\n80, 24\n",     // two lines: only the last LF is the EOL
		"\r\n",                 // empty query
		"",                     // nothing
		"\x00,\xff",            // binary
		"\uff18\uff10, 23\r\n", // full-width digits
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		sp, cp, err := ParseQuery(line)
		if err != nil {
			if !errors.Is(err, ErrInvalidPort) {
				t.Fatalf("%q: %v does not wrap ErrInvalidPort", line, err)
			}
			// The echoed pair must still render as a valid reply.
			if _, err := AppendReply(nil, ErrorReply(sp, cp, InvalidPort)); err != nil {
				t.Fatalf("%q: INVALID-PORT reply for %d, %d: %v", line, sp, cp, err)
			}
			return
		}
		if sp == 0 || cp == 0 {
			t.Fatalf("%q: accepted port 0 (%d, %d)", line, sp, cp)
		}
		// Only digits, one comma, white space and the EOL make a query.
		body := trimEOL(line)
		if i := bytes.IndexFunc(body, func(r rune) bool {
			return !(r >= '0' && r <= '9' || r == ',' || r == ' ' || r == '\t')
		}); i >= 0 {
			t.Fatalf("%q: accepted with %q at %d", line, body[i], i)
		}
		if bytes.Count(body, []byte{','}) != 1 {
			t.Fatalf("%q: accepted without exactly one comma", line)
		}

		// Re-rendered, the query parses back to the same ports.
		q := AppendQuery(nil, sp, cp)
		sp2, cp2, err := ParseQuery(q)
		if err != nil || sp2 != sp || cp2 != cp {
			t.Fatalf("%q -> %d, %d -> %q -> %d, %d, %v", line, sp, cp, q, sp2, cp2, err)
		}
		// So does the reply to it.
		for _, r := range []Reply{HostIDReply(sp, cp, "4660"), ErrorReply(sp, cp, NoUser)} {
			b, err := AppendReply(nil, r)
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseReply(b)
			if err != nil || back.ServerPort != sp || back.ClientPort != cp {
				t.Fatalf("reply %q -> %+v, %v", b, back, err)
			}
		}
	})
}

func FuzzParseReply(f *testing.F) {
	for _, s := range []string{
		"6193, 23 : USERID : UNIX : stjohns\r\n", // RFC 1413 §4 examples
		"6195, 23 : ERROR : NO-USER\r\n",
		"6193, 23 : USERID : OTHER :4660\r\n", // what Server sends
		"0, 0 : ERROR : INVALID-PORT\r\n",     // echo of an unparsable query
		"1,2:USERID:OTHER , UTF-8:a:b c\n",    // charset, colons in the user-id
		"1, 2 : ERROR : X-PRIVATE\r\n",        // non-standard error token
		"1, 2 : USERID : OTHER :\r\n",         // empty user-id
		"1, 2 : USERID : OTHER :a\x00b\r\n",   // NUL in the user-id
		"1, 2 : USERID : : x\r\n",             // empty opsys
		"1, 2 : maybe : x\r\n",                // unknown response type
		"65536, 2 : ERROR : NO-USER\r\n",      // port out of range
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseReply(line)
		if err != nil {
			if !errors.Is(err, ErrBadReply) {
				t.Fatalf("%q: %v does not wrap ErrBadReply", line, err)
			}
			return
		}
		b, err := AppendReply(nil, r)
		if err != nil {
			// Only a user-id longer than a server should send (note 3)
			// parses but does not render.
			if len(r.UserID) <= MaxUserIDLen {
				t.Fatalf("%q parsed to %+v that does not render: %v", line, r, err)
			}
			return
		}
		back, err := ParseReply(b)
		if err != nil || back != r {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", line, r, b, back, err)
		}
	})
}
