package table

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/natreveal/natreveal/lab"
	"github.com/natreveal/natreveal/method/all"
	"github.com/natreveal/natreveal/reveal"
	"github.com/natreveal/natreveal/reveal/listener"
)

// Server ports.
const (
	portTCP   = 8080
	portHTTP  = 8081
	portHTTPS = 8443
	portUDP   = 5353
	portPerf  = 9000 // + the measurement's number
)

// Record is what the server learnt of one labelled connection.
type Record struct {
	Src   string
	Found bool
	ID    uint32
	Err   string
}

// Datagram is what the server learnt of one labelled UDP datagram: from
// its socket (IPv4 options, IPv6 Destination Options) and, IPv4, from a
// raw socket that sees the whole IP header.
type Datagram struct {
	Src       string
	Sock      bool   // delivered to the UDP socket
	IPOptions []byte // IP_RECVOPTS
	DstOpts   []byte // IPV6_DSTOPTS ancillary data
	Raw       bool   // seen on the raw socket
	IPID      uint16
	Atomic    bool // DF set, not a fragment (RFC 6864)
}

// decodeAll is the listener's decoder: every method a saved SYN can hold;
// the method descriptors pick theirs.
var decodeAll = &reveal.Decoder{Methods: inPackets()}

// inPackets lists the methods whose HOST_ID the registry's decoders read
// from a packet (method.Decoder.Packet), in the decoder's order.
func inPackets() []reveal.Method {
	var out []reveal.Method
	for _, m := range reveal.Methods {
		if md, _ := all.Lookup(string(m)); md.Decoder.Packet != nil {
			out = append(out, m)
		}
	}
	return out
}

// store holds what the servers saw, by label.
type store struct {
	env   ServerEnv
	mu    sync.Mutex
	conns map[string]Record
	dgram map[string]*Datagram
	hip   map[string][16]byte // label (receiver HIT) -> sender HIT
	// refuse, while set, is the application's block list (the
	// blacklisting row): a connection it names is refused once its
	// HOST_ID has been read.
	refuse func(m *Method, c net.Conn, rec Record) bool
}

func (s *store) setRefuse(f func(m *Method, c net.Conn, rec Record) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = f
}

func newStore(ns string) *store {
	return &store{env: ServerEnv{NS: ns}, conns: map[string]Record{}, dgram: map[string]*Datagram{}, hip: map[string][16]byte{}}
}

func (s *store) conn(label string) (Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.conns[label]
	return r, ok
}

func (s *store) datagram(label string) (Datagram, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.dgram[label]
	if !ok {
		return Datagram{}, false
	}
	return *d, true
}

func (s *store) updateDatagram(label string, f func(d *Datagram)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dgram[label]
	if d == nil {
		d = &Datagram{}
		s.dgram[label] = d
	}
	f(d)
}

// revealConn finds the listener's connection under wrappers (TLS, or a
// method's own Wrap) that expose NetConn.
func revealConn(c net.Conn) *listener.Conn {
	for c != nil {
		if rc, ok := c.(*listener.Conn); ok {
			return rc
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
	return nil
}

// read runs m's reader on c and records the outcome under label; refused:
// the application's block list names the connection.
func (s *store) read(m *Method, label string, c net.Conn, r *http.Request) (refused bool) {
	rec := Record{Src: c.RemoteAddr().String()}
	if m != nil && m.ReadConn != nil {
		id, ok, err := m.ReadConn(s.env, c, r)
		rec.ID, rec.Found = id, ok
		if err != nil {
			rec.Err = err.Error()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	refused = s.refuse != nil && s.refuse(m, c, rec)
	if label != "" {
		s.conns[label] = rec
	}
	return refused
}

// servers are the TCP, HTTP and HTTPS servers of one method (nil: natreveal
// off), IPv4 and IPv6, in the server namespace.
type servers struct {
	lns   []net.Listener
	https []*http.Server
	wg    sync.WaitGroup
}

func listenReveal(ns, network, addr string, m *Method) (net.Listener, error) {
	var ln net.Listener
	err := lab.Do(ns, func() error {
		l, err := listener.Listen(network, addr, decodeAll)
		ln = l
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: listen %s: %w", addr, err)
	}
	if m != nil && m.Wrap != nil {
		ln = m.Wrap(ln)
	}
	return ln, nil
}

// startServers starts the method's servers. perfPort != 0 starts only a
// plain TCP server there, which reads every connection but keeps no record.
func startServers(ns string, st *store, m *Method, cert tls.Certificate, perfPort int) (*servers, error) {
	s := &servers{}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	addrs := []struct{ network, host string }{{"tcp4", lab.ServerAddr}, {"tcp6", lab.ServerAddr6}}
	for _, a := range addrs {
		port := portTCP
		if perfPort != 0 {
			port = perfPort
		}
		ln, err := listenReveal(ns, a.network, net.JoinHostPort(a.host, fmt.Sprint(port)), m)
		if err != nil {
			return nil, err
		}
		s.lns = append(s.lns, ln)
		s.wg.Add(1)
		go s.serveTCP(ln, st, m, perfPort != 0)
		if perfPort != 0 {
			continue
		}
		for _, h := range []struct {
			port int
			tls  bool
		}{{portHTTP, false}, {portHTTPS, true}} {
			ln, err := listenReveal(ns, a.network, net.JoinHostPort(a.host, fmt.Sprint(h.port)), m)
			if err != nil {
				return nil, err
			}
			hs := &http.Server{
				Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					c, _ := r.Context().Value(connKey{}).(net.Conn)
					if c == nil {
						http.Error(w, "no connection", http.StatusInternalServerError)
						return
					}
					if st.read(m, strings.TrimPrefix(r.URL.Path, "/"), c, r) {
						http.Error(w, "blocked", http.StatusForbidden)
						return
					}
					w.Write([]byte("ok\n"))
				}),
				ConnContext: func(ctx context.Context, c net.Conn) context.Context {
					return context.WithValue(ctx, connKey{}, c)
				},
				ReadHeaderTimeout: 5 * time.Second,
				ErrorLog:          log.New(io.Discard, "", 0), // aborted probes are counted, not logged
			}
			if h.tls {
				hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
			}
			s.https = append(s.https, hs)
			s.wg.Add(1)
			go func(tlsOn bool) {
				defer s.wg.Done()
				if tlsOn {
					hs.ServeTLS(ln, "", "")
				} else {
					hs.Serve(ln)
				}
			}(h.tls)
		}
	}
	ok = true
	return s, nil
}

type connKey struct{}

// serveTCP: the client sends a label line; the server reads the HOST_ID,
// records it, answers "ok" and closes.
func (s *servers) serveTCP(ln net.Listener, st *store, m *Method, perf bool) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			line, err := bufio.NewReaderSize(c, 64).ReadString('\n')
			if err != nil {
				return
			}
			label := strings.TrimSpace(line)
			if perf {
				label = ""
			}
			if st.read(m, label, c, nil) {
				return // refused: closed without an answer
			}
			c.Write([]byte("ok\n"))
		}()
	}
}

func (s *servers) close() {
	for _, hs := range s.https {
		hs.Close() // closes its listener and connections
	}
	for _, ln := range s.lns {
		ln.Close()
	}
	s.wg.Wait()
}

// udpServers receive labelled datagrams: an IPv4 socket with IP_RECVOPTS,
// an IPv6 socket with IPV6_RECVDSTOPTS and a raw IPv4 UDP socket that sees
// the whole IPv4 header (the IP-ID).
type udpServers struct {
	conns []net.PacketConn
	wg    sync.WaitGroup
}

func startUDP(ns string, st *store) (*udpServers, error) {
	u := &udpServers{}
	err := lab.Do(ns, func() error {
		c4, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(lab.ServerAddr), Port: portUDP})
		if err != nil {
			return err
		}
		u.conns = append(u.conns, c4)
		if err := sockopt(c4, unix.IPPROTO_IP, unix.IP_RECVOPTS); err != nil {
			return err
		}
		c6, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.ParseIP(lab.ServerAddr6), Port: portUDP})
		if err != nil {
			return err
		}
		u.conns = append(u.conns, c6)
		if err := sockopt(c6, unix.IPPROTO_IPV6, unix.IPV6_RECVDSTOPTS); err != nil {
			return err
		}
		raw, err := net.ListenIP("ip4:17", &net.IPAddr{IP: net.ParseIP(lab.ServerAddr)})
		if err != nil {
			return err
		}
		u.conns = append(u.conns, raw)
		u.wg.Add(3)
		go u.readSock(c4, st)
		go u.readSock(c6, st)
		go u.readRaw(raw, st)
		return nil
	})
	if err != nil {
		u.close()
		return nil, fmt.Errorf("lab: udp servers: %w", err)
	}
	return u, nil
}

func sockopt(c *net.UDPConn, level, opt int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, 1) }); err != nil {
		return err
	}
	return serr
}

func (u *udpServers) readSock(c *net.UDPConn, st *store) {
	defer u.wg.Done()
	buf, oob := make([]byte, 2048), make([]byte, 512)
	for {
		n, oobn, _, from, err := c.ReadMsgUDP(buf, oob)
		if err != nil {
			return
		}
		var opts, dst []byte
		if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, cm := range cms {
				switch {
				case cm.Header.Level == unix.IPPROTO_IP && cm.Header.Type == unix.IP_RECVOPTS:
					opts = append([]byte(nil), cm.Data...)
				case cm.Header.Level == unix.IPPROTO_IPV6 && cm.Header.Type == unix.IPV6_DSTOPTS:
					dst = append([]byte(nil), cm.Data...)
				}
			}
		}
		st.updateDatagram(string(buf[:n]), func(d *Datagram) {
			d.Sock, d.Src, d.IPOptions, d.DstOpts = true, from.String(), opts, dst
		})
	}
}

func (u *udpServers) readRaw(c *net.IPConn, st *store) {
	defer u.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		p := buf[:n]
		if n < 20 || p[0]>>4 != 4 {
			continue
		}
		hl := int(p[0]&0x0f) * 4
		if n < hl+8 || binary.BigEndian.Uint16(p[hl+2:]) != portUDP {
			continue
		}
		ff := binary.BigEndian.Uint16(p[6:8])
		id := binary.BigEndian.Uint16(p[4:6])
		atomic := ff&0x4000 != 0 && ff&0x2000 == 0 && ff&0x1fff == 0
		st.updateDatagram(string(p[hl+8:]), func(d *Datagram) { d.Raw, d.IPID, d.Atomic = true, id, atomic })
	}
}

func (u *udpServers) close() {
	for _, c := range u.conns {
		c.Close()
	}
	u.wg.Wait()
}

// hipReceiver records the HIP packets reaching the server (IP protocol 139,
// raw socket): sender HIT by receiver HIT (the probe's label).
type hipReceiver struct {
	c  *net.IPConn
	wg sync.WaitGroup
}

func startHIP(ns string, st *store) (*hipReceiver, error) {
	h := &hipReceiver{}
	err := lab.Do(ns, func() error {
		var err error
		h.c, err = net.ListenIP("ip4:139", nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: hip receiver: %w", err)
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		buf := make([]byte, 2048)
		for {
			n, err := h.c.Read(buf)
			if err != nil {
				return
			}
			p := buf[:n]
			if n < 20 {
				continue
			}
			hl := int(p[0]&0x0f) * 4
			if n < hl+40 {
				continue
			}
			hip := p[hl:]
			st.mu.Lock()
			st.hip[string(hip[24:40])] = [16]byte(hip[8:24])
			st.mu.Unlock()
		}
	}()
	return h, nil
}

func (h *hipReceiver) close() {
	h.c.Close()
	h.wg.Wait()
}

// selfSigned makes the TLS server's certificate for the server's addresses,
// valid for a day.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "natreveal lab server"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP(lab.ServerAddr), net.ParseIP(lab.ServerAddr6)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}

var errNoRecord = errors.New("the server saw nothing")
