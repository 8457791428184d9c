// Package control is the daemon's control socket: a unix socket that
// answers each connection with a JSON snapshot of the running daemon
// (version, configuration, ruleset, counters), which `natreveal status`
// reads together with what the kernel says (the table, the queues).
package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/natreveal/natreveal/internal/unixsock"
)

// DefaultSocket is where the daemon serves the socket unless status.socket
// says otherwise (config.Keys spells the same default).
const DefaultSocket = "/run/natreveal/control.sock"

// Snapshot is what the daemon says about itself.
type Snapshot struct {
	Version    string   `json:"version"`
	PID        int      `json:"pid"`
	ConfigFile string   `json:"config_file,omitempty"`
	Started    string   `json:"started"` // RFC 3339
	Methods    []string `json:"methods"`
	Placement  string   `json:"placement"`
	Mechanism  string   `json:"mechanism,omitempty"` // native or compat; "" before the queues are bound
	Table      string   `json:"table"`
	Families   []string `json:"families"` // nft families of the table: ip, ip6
	QueueNum   int      `json:"queue_num"`
	QueueCount int      `json:"queue_count"` // 0: no queue (port-set, ident only)
	// SelectQueues, fail closed, follow the QueueCount others: selected
	// flows' packets (rules.Spec.SelectQueues). 0 without selected flows.
	SelectQueues int  `json:"select_queues,omitempty"`
	Installed    bool `json:"installed"` // the daemon installed its ruleset (and has not removed it)
	// PacketMethods: the configuration has methods that queue packets, so
	// the daemon installs Table's ruleset (Installed says once it has).
	PacketMethods bool `json:"packet_methods"`
	// PortSetTable is port-set's table, "FAMILY NAME" as Facts.Tables keys
	// it ("ip natreveal_portset"); "" without port-set. PortSetInstalled:
	// the daemon installed it (and has not removed it).
	PortSetTable     string            `json:"port_set_table,omitempty"`
	PortSetInstalled bool              `json:"port_set_installed,omitempty"`
	Rules            string            `json:"rules,omitempty"`
	Counters         map[string]uint64 `json:"counters"`
}

// Server serves snapshots on a unix socket.
type Server struct {
	ln   net.Listener
	path string
	wg   sync.WaitGroup
}

// Listen serves snap() on the unix socket path (mode 0600, its directory
// made 0755), replacing a socket a killed daemon left; any other file at
// path stays (internal/unixsock).
func Listen(path string, snap func() Snapshot) (*Server, error) {
	ln, err := unixsock.Listen(path, 200*time.Millisecond)
	if errors.Is(err, unixsock.ErrInUse) {
		return nil, fmt.Errorf("control socket %s: another daemon answers there", path)
	}
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	s := &Server{ln: ln, path: path}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetWriteDeadline(time.Now().Add(2 * time.Second))
			json.NewEncoder(c).Encode(snap())
			c.Close()
		}
	}()
	return s, nil
}

// Close stops serving and removes the socket.
func (s *Server) Close() {
	s.ln.Close() // the unix listener unlinks its path
	s.wg.Wait()
}

// ErrNoDaemon: nothing listens on the socket.
var ErrNoDaemon = errors.New("no daemon")

// ErrNoAnswer: something holds the socket but does not answer (a stopped
// process).
var ErrNoAnswer = errors.New("the daemon does not answer")

// Query asks the daemon at path for its snapshot.
func Query(path string, timeout time.Duration) (*Snapshot, error) {
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) {
			err = oe.Err // without "dial unix PATH"
		}
		return nil, fmt.Errorf("%w answers on %s (%v)", ErrNoDaemon, path, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	var s Snapshot
	if err := json.NewDecoder(c).Decode(&s); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, fmt.Errorf("%w within %v (%s): stopped or hung?", ErrNoAnswer, timeout, path)
		}
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return &s, nil
}
