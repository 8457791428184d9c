package metrics

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server answers scrapes of /metrics over HTTP/1.x (RFC 9112): GET or
// HEAD, one response per connection ("Connection: close"), which is all a
// Prometheus scrape needs. It is not net/http's server because that one
// (with its TLS and HTTP/2 paths) weighs 2.1 MB in a mips build, a quarter
// of a router's flash.
type Server struct {
	reg   *Registry
	ln    net.Listener
	slots chan struct{} // scrapes served at once

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
	done  chan error

	closeOnce sync.Once
	closeErr  error
}

const (
	maxScrapes   = 4
	maxHeader    = 8 << 10          // request line and header fields
	scrapeLimit  = 10 * time.Second // to read the request and write the response
	closeTimeout = time.Second      // Close waits this long for scrapes in flight
)

// Listen starts serving reg on addr ("host:port").
func Listen(addr string, reg *Registry) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	s := &Server{reg: reg, ln: ln, slots: make(chan struct{}, maxScrapes),
		conns: map[net.Conn]struct{}{}, done: make(chan error, 1)}
	go s.accept()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the server, waiting at most a second for scrapes in flight.
// Closing again returns the first Close's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Server) close() error {
	s.ln.Close()
	err := <-s.done
	idle := make(chan struct{})
	go func() { s.wg.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-time.After(closeTimeout):
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		<-idle
	}
	return err
}

func (s *Server) accept() {
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			s.done <- nil
			return
		}
		if err != nil {
			// Out of descriptors and the like: wait and try again, as
			// net/http does.
			if ne, ok := err.(net.Error); ok && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			s.done <- fmt.Errorf("metrics: accept: %w", err)
			return
		}
		backoff = 0
		select {
		case s.slots <- struct{}{}:
		default:
			c.Close() // maxScrapes already in flight
			continue
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				<-s.slots
				s.wg.Done()
			}()
			c.SetDeadline(time.Now().Add(scrapeLimit))
			s.serve(c, c)
			lingeringClose(c)
		}()
	}
}

// lingeringClose ends the response, then reads what the client still
// sends (a request larger than the limit, say) for a little while, so that
// closing does not reset the connection before the client read the answer.
func lingeringClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
		tc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.Copy(io.Discard, io.LimitReader(tc, 256<<10))
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// serve reads one request from r and writes its response to w.
func (s *Server) serve(r io.Reader, w io.Writer) {
	method, path, err := readRequest(bufio.NewReaderSize(io.LimitReader(r, maxHeader), 1024))
	switch {
	case err != nil:
		respond(w, 400, "text/plain; charset=utf-8", []byte(err.Error()+"\n"), false)
	case path != "/metrics":
		respond(w, 404, "text/plain; charset=utf-8", []byte("404 page not found\n"), false)
	case method != "GET" && method != "HEAD":
		respond(w, 405, "text/plain; charset=utf-8", []byte("GET or HEAD\n"), false)
	default:
		var b bytes.Buffer
		if err := s.reg.Expose(&b); err != nil {
			respond(w, 500, "text/plain; charset=utf-8", []byte("An error has occurred while serving metrics:\n\n"+err.Error()+"\n"), false)
			return
		}
		respond(w, 200, contentType, b.Bytes(), method == "HEAD")
	}
}

// readRequest reads the request line (RFC 9112 section 3) and the header
// fields up to the empty line; the fields themselves are not needed.
func readRequest(br *bufio.Reader) (method, path string, err error) {
	line, err := readLine(br)
	if err != nil {
		return "", "", err
	}
	f := strings.Fields(line)
	if len(f) != 3 || !strings.HasPrefix(f[2], "HTTP/1.") {
		return "", "", fmt.Errorf("malformed request line %q", line)
	}
	path, _, _ = strings.Cut(f[1], "?")
	for {
		h, err := readLine(br)
		if err != nil {
			return "", "", err
		}
		if h == "" {
			return f[0], path, nil
		}
	}
}

func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			return "", errors.New("request header incomplete or over 8 KiB")
		}
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

var statusText = map[int]string{200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}

func respond(w io.Writer, code int, ctype string, body []byte, head bool) {
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + strconv.Itoa(code) + " " + statusText[code] + "\r\n")
	b.WriteString("Content-Type: " + ctype + "\r\n")
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	if code == 405 {
		b.WriteString("Allow: GET, HEAD\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	if !head {
		b.Write(body)
	}
	w.Write(b.Bytes())
}
