package observe

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// DefaultControl is the control socket observe answers `who` on.
const DefaultControl = "/run/natreveal/observe.sock"

// The control protocol is one exchange per connection: the client writes
// "ADDR:PORT\n", the server answers one JSON line, a Seen or
// {"error": "..."}.
type answer struct {
	*Seen
	Error string `json:"error,omitempty"`
}

// errUnknown is the answer's error when nothing was seen of the source.
const errUnknown = "unknown"

// ErrUnknown: observe saw no connection with a HOST_ID from that source
// recently.
var ErrUnknown = errors.New("no recent connection with a HOST_ID from that source")

// ServeControl answers lookups in t on ln until ln is closed.
func ServeControl(ln net.Listener, t *Recent) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("observe: control: %w", err)
		}
		go answerOne(c, t)
	}
}

func answerOne(c net.Conn, t *Recent) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	var a answer
	ap, err := netip.ParseAddrPort(strings.TrimSpace(line))
	if err != nil {
		a.Error = "bad request: " + err.Error()
	} else if s, ok := t.Lookup(ap, time.Now()); ok {
		a.Seen = &s
	} else {
		a.Error = errUnknown
	}
	b, _ := json.Marshal(a)
	c.Write(append(b, '\n'))
}

// Ask asks the observe listening on the control socket path what it saw of
// src; ErrUnknown when nothing.
func Ask(ctx context.Context, path string, src netip.AddrPort) (Seen, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return Seen{}, fmt.Errorf("observe control socket: %w (is natreveal-server observe running with --control %s?)", err, path)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := fmt.Fprintf(c, "%s\n", src); err != nil {
		return Seen{}, fmt.Errorf("observe control socket: %w", err)
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return Seen{}, fmt.Errorf("observe control socket: %w", err)
	}
	var a answer
	if err := json.Unmarshal(line, &a); err != nil {
		return Seen{}, fmt.Errorf("observe control socket: answer: %w", err)
	}
	switch {
	case a.Error == errUnknown:
		return Seen{}, ErrUnknown
	case a.Error != "":
		return Seen{}, fmt.Errorf("observe control socket: %s", a.Error)
	case a.Seen == nil:
		return Seen{}, errors.New("observe control socket: empty answer")
	}
	return *a.Seen, nil
}
