package table

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/natreveal/natreveal/lab"
)

// serverIP is the server's address for a family.
func serverIP(family int) string {
	if family == 6 {
		return lab.ServerAddr6
	}
	return lab.ServerAddr
}

func network(family int) string {
	if family == 6 {
		return "tcp6"
	}
	return "tcp4"
}

// dialIn opens a TCP connection from namespace ns.
func dialIn(ns string, family, port int, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := lab.Do(ns, func() error {
		var err error
		c, err = (&net.Dialer{Timeout: timeout}).Dial(network(family), net.JoinHostPort(serverIP(family), fmt.Sprint(port)))
		return err
	})
	return c, err
}

// tcpProbe opens one connection labelled label and waits for the server's
// "ok": the connection completed.
func tcpProbe(ns string, family int, label string, timeout time.Duration) error {
	c, err := dialIn(ns, family, portTCP, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout + 3*time.Second))
	if _, err := io.WriteString(c, label+"\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ok\n" {
		return fmt.Errorf("server answered %q", line)
	}
	return nil
}

// httpProbe sends one request (on a new connection) to the HTTP or HTTPS
// server.
func httpProbe(ns string, family int, label string, secure bool, roots *x509.CertPool, timeout time.Duration) error {
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			port := portHTTP
			if secure {
				port = portHTTPS
			}
			return dialIn(ns, family, port, timeout)
		},
		TLSClientConfig: &tls.Config{RootCAs: roots},
	}
	defer tr.CloseIdleConnections()
	scheme, port := "http", portHTTP
	if secure {
		scheme, port = "https", portHTTPS
	}
	cl := &http.Client{Transport: tr, Timeout: timeout + 3*time.Second}
	resp, err := cl.Get(fmt.Sprintf("%s://%s/%s", scheme, net.JoinHostPort(serverIP(family), fmt.Sprint(port)), label))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		return fmt.Errorf("server answered %s %q", resp.Status, body)
	}
	return nil
}

// udpSend sends label as one datagram from a new socket (a new flow).
func udpSend(ns string, family int, label string) error {
	return lab.Do(ns, func() error {
		netw := "udp4"
		if family == 6 {
			netw = "udp6"
		}
		c, err := net.Dial(netw, net.JoinHostPort(serverIP(family), fmt.Sprint(portUDP)))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte(label))
		return err
	})
}

// parallel runs fn(i) for i in [0, n) on at most width goroutines.
func parallel(n, width int, fn func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, width)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(i)
		}()
	}
	wg.Wait()
}

// rate measures new connections per second from the hosts to the perf
// port: workers per host loop connect, one line each way, close (with a
// reset, so no TIME_WAIT piles up) until d has passed or max connections
// are done. It returns the completed connections and the rate.
func rate(hosts []lab.Host, family, port int, d time.Duration, max int64, perHost int) (int64, float64) {
	var done, started atomic.Int64
	var wg sync.WaitGroup
	begin := time.Now()
	deadline := begin.Add(d)
	for _, h := range hosts {
		for w := 0; w < perHost; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if lab.Enter(h.NS) != nil { // never left: the thread ends with the goroutine
					return
				}
				addr := net.JoinHostPort(serverIP(family), fmt.Sprint(port))
				dl := net.Dialer{Timeout: 2 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
					return rc.Control(func(fd uintptr) {
						unix.SetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
					})
				}}
				buf := make([]byte, 8)
				for time.Now().Before(deadline) && started.Add(1) <= max {
					c, err := dl.Dial(network(family), addr)
					if err != nil {
						continue
					}
					c.SetDeadline(time.Now().Add(3 * time.Second))
					if _, err := c.Write([]byte("p\n")); err == nil {
						if n, err := io.ReadFull(c, buf[:3]); err == nil && n == 3 && strings.HasPrefix(string(buf[:3]), "ok") {
							done.Add(1)
						}
					}
					c.Close()
				}
			}()
		}
	}
	wg.Wait()
	el := time.Since(begin).Seconds()
	return done.Load(), float64(done.Load()) / el
}
