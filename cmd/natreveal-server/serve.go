package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/natreveal/natreveal/internal/cli"
	"github.com/natreveal/natreveal/method/all"
	"github.com/natreveal/natreveal/reveal"
	"github.com/natreveal/natreveal/reveal/listener"
)

// revealFlags are the decoding flags serve, observe and decode share.
type revealFlags struct {
	methods []string
	// types holds the --<method>-type flag of each method whose carrier is
	// an option of a type a server may be told (RFC 4727).
	types  map[reveal.Method]*string
	format string
}

func addRevealFlags(fs *pflag.FlagSet, format string) *revealFlags {
	f := &revealFlags{types: map[reveal.Method]*string{}}
	def := make([]string, len(reveal.DefaultMethods))
	for i, m := range reveal.DefaultMethods {
		def[i] = string(m)
	}
	var names, opt []string
	for _, m := range reveal.Methods {
		if md, _ := all.Lookup(string(m)); md.Decoder.Default {
			names = append(names, string(m))
		} else {
			opt = append(opt, string(m))
		}
	}
	fs.StringSliceVar(&f.methods, "methods", def, "HOST_ID methods to read: "+strings.Join(append(names, opt...), ", ")+
		" ("+strings.Join(opt, ", ")+" only if the NAT in front of the clients writes it)")
	for _, m := range reveal.OptionTyped() {
		md, _ := all.Lookup(string(m))
		dflt := strconv.Itoa(int(md.Decoder.Types[0]))
		if md.Decoder.TypeHex {
			dflt = fmt.Sprintf("0x%02X", md.Decoder.Types[0])
		}
		f.types[m] = fs.String(string(m)+"-type", dflt, md.Decoder.TypeHelp)
	}
	fs.StringVar(&f.format, "format", format, "output: json (one JSON object per line) or text")
	return f
}

// decoder checks the flags; its errors are usage errors (exit 2).
func (f *revealFlags) decoder() (*reveal.Decoder, reveal.Format, error) {
	ms, err := reveal.ParseMethods(f.methods)
	if err != nil {
		return nil, "", cli.UsageErr(fmt.Errorf("--methods: %v", err))
	}
	d := &reveal.Decoder{Methods: ms, Types: map[reveal.Method]byte{}}
	for _, m := range reveal.OptionTyped() {
		if d.Types[m], err = reveal.ParseOptionType(*f.types[m], m.Types()); err != nil {
			return nil, "", cli.UsageErr(fmt.Errorf("--%s-type: %v", m, err))
		}
	}
	format, err := reveal.ParseFormat(f.format)
	if err != nil {
		return nil, "", cli.UsageErr(fmt.Errorf("--format: %v", err))
	}
	return d, format, nil
}

// lineWriter writes whole lines to w, one Write each, from any goroutine.
type lineWriter struct {
	mu  sync.Mutex
	w   io.Writer
	f   reveal.Format
	buf []byte
}

func (lw *lineWriter) record(r reveal.Record) error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.buf = lw.f.AppendLine(lw.buf[:0], r)
	_, err := lw.w.Write(lw.buf)
	return err
}

func serveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "A demo TCP server that greets each client with the HOST_ID its SYN carried (TCP_SAVED_SYN)",
		Long: `serve accepts TCP connections, reads each connection's SYN back from the
kernel (TCP_SAVE_SYN), prints one line per connection (the first HOST_ID found,
in --methods order), answers with a one-line greeting naming the HOST_ID, and
closes. SIGINT/SIGTERM stop it.`,
		Args: cli.NoArgs,
	}
	cli.FlagErrorsAreUsage(cmd)
	listen := cmd.Flags().String("listen", ":8080", "address to listen on (host:port; tcp4 and tcp6)")
	rf := addRevealFlags(cmd.Flags(), "text")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		d, format, err := rf.decoder()
		if err != nil {
			return err
		}
		if _, port, err := net.SplitHostPort(*listen); err != nil {
			return cli.UsageErr(fmt.Errorf("--listen: %v", err))
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return cli.UsageErr(fmt.Errorf("--listen: port %q: not a number from 0 to 65535", port))
		}
		ln, err := listener.Listen("tcp", *listen, d)
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		logger := cli.Logger(cmd.ErrOrStderr())
		logger.Printf("serve: listening on %s, methods %v", ln.Addr(), d.Methods)
		ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		return serve(ctx, ln, &lineWriter{w: cmd.OutOrStdout(), f: format}, logger)
	}
	return cmd
}

// serve runs the demo server on ln until ctx ends, then closes ln and waits
// for the connections being answered.
func serve(ctx context.Context, ln *listener.Listener, out *lineWriter, logger *log.Logger) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.AcceptReveal()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("serve: %w", err)
			}
			logger.Printf("serve: accept: %v", err) // e.g. EMFILE: go on
			time.Sleep(100 * time.Millisecond)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			r, greeting := greet(time.Now(), c)
			if err := out.record(r); err != nil {
				logger.Printf("serve: output: %v", err)
			}
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, greeting)
		}()
	}
}

// greet describes a connection: its report line (the first HOST_ID found)
// and the greeting, which names every HOST_ID found.
func greet(now time.Time, c *listener.Conn) (reveal.Record, string) {
	r := reveal.Record{Time: now.UTC(), Proto: "tcp"}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		r.Src = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if ap, err := netip.ParseAddrPort(c.LocalAddr().String()); err == nil {
		r.DstPort = ap.Port()
	}
	found := c.HostIDs()
	if len(found) == 0 {
		why := "no HOST_ID seen"
		if err := c.SYNError(); err != nil {
			why = "no HOST_ID: the kernel kept no SYN for this connection"
		}
		return r, fmt.Sprintf("hello %s, %s\n", r.Src, why)
	}
	r.Method, r.HostID = found[0].Method, found[0].String()
	var ids []string
	for _, f := range found {
		ids = append(ids, fmt.Sprintf("%s (%s)", f.String(), f.Method))
	}
	return r, fmt.Sprintf("hello %s, your HOST_ID is %s\n", r.Src, strings.Join(ids, ", "))
}
