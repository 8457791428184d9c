package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/internal/cli"
	"github.com/natreveal/natreveal/lab"
)

// demoCmd: two inside hosts behind the kernel's masquerade connect to a
// server, which prints the HOST_ID it read from each SYN.
func demoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Show natreveal's main job in network namespaces: a server prints the HOST_ID of each inside host (root)",
		Args:  cli.NoArgs,
	}
	cli.FlagErrorsAreUsage(cmd)
	bin := natrevealFlag(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := demo(cmd.Context(), *bin); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		return nil
	}
	return cmd
}

func demo(ctx context.Context, bin string) error {
	dir, err := os.MkdirTemp("", "natreveal-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if bin, err = lab.Natreveal(ctx, bin, dir, os.Stderr); err != nil {
		return err
	}
	l, err := lab.New()
	if err != nil {
		return err
	}
	defer l.Close()
	srv, err := lab.Listen(l.Srv, lab.ServerAddr+":8080")
	if err != nil {
		return err
	}
	defer srv.Close()

	args := []string{"--inside", lab.InsidePrefix, "--methods", "tcp-option,ip-id"}
	fmt.Printf("lab: inside %s and %s -> NAT %s (kernel masquerade) -> server %s\n",
		lab.Client1, lab.Client2, lab.NATPublic, lab.ServerAddr)
	fmt.Printf("$ natreveal run %s\n", strings.Join(args, " "))
	d, err := lab.StartInNS(ctx, l.NAT, append([]string{bin, "run", "--status-socket="}, args...), nil, 0)
	if err != nil {
		return err
	}
	// Up to the "running:" line now, the rest once it stopped.
	out := d.Output()
	shown := strings.Index(out, "running:")
	shown += strings.IndexByte(out[shown:], '\n') + 1
	printIndented(out[:shown])
	// Each connection's payload is its label, so that the server's side
	// can be matched to the inside host that sent it.
	sender := map[string]string{}
	for i, c := range []struct{ ns, addr string }{{l.C1, lab.Client1}, {l.C2, lab.Client2}, {l.C1, lab.Client1}, {l.C2, lab.Client2}} {
		label := fmt.Sprintf("hello-%d", i)
		sender[label] = c.addr
		if err := lab.Connect(c.ns, srv.Addr(), []byte(fmt.Sprintf("%-16s", label)), 10*time.Second); err != nil {
			return err
		}
	}
	time.Sleep(100 * time.Millisecond)
	fmt.Println("server saw:")
	fmt.Printf("  %-18s %-22s %-22s %s\n", "sent by (inside)", "source (after NAT)", "RFC 7974 HOST_ID", "IP-ID")
	seen := srv.Seen()
	for _, s := range seen {
		opt := "none"
		if s.HasOption {
			opt = fmt.Sprintf("0x%04x (%d bytes)", s.OptionID, s.OptionLen)
		}
		fmt.Printf("  %-18s %-22s %-22s 0x%04x\n", orUnknown(sender[strings.TrimSpace(s.Head)]), s.Src, opt, s.IPID)
	}
	fmt.Println(demoSummary(seen, sender))
	d.Signal(syscall.SIGTERM)
	err = d.Wait()
	printIndented(d.Output()[shown:])
	return err
}

// demoSummary says in one line what the table shows: the inside hosts
// behind one public address, each told apart by its HOST_ID, or else what
// the server could not tell.
func demoSummary(seen []lab.Seen, sender map[string]string) string {
	public := map[string]bool{}
	ids := map[string]map[uint32]bool{} // inside host -> HOST_IDs seen
	var hosts []string
	for _, s := range seen {
		inside := sender[strings.TrimSpace(s.Head)]
		if host, _, err := net.SplitHostPort(s.Src); err == nil {
			public[host] = true
		}
		if ids[inside] == nil {
			ids[inside] = map[uint32]bool{}
			hosts = append(hosts, inside)
		}
		if s.HasOption {
			ids[inside][s.OptionID] = true
		}
	}
	owner := map[uint32]string{}
	var parts []string
	for _, h := range hosts {
		if h == "" || len(ids[h]) != 1 {
			return "the server could not tell every inside host by a HOST_ID of its own (see the table)"
		}
		for id := range ids[h] {
			if o, ok := owner[id]; ok && o != h {
				return "the server could not tell every inside host by a HOST_ID of its own (see the table)"
			}
			owner[id] = h
			parts = append(parts, fmt.Sprintf("%s as 0x%04x", h, id))
		}
	}
	if len(public) != 1 || len(hosts) < 2 {
		return "the server could not tell every inside host by a HOST_ID of its own (see the table)"
	}
	var addr string
	for a := range public {
		addr = a
	}
	return fmt.Sprintf("%d inside hosts behind one public address (%s), each recognized by its HOST_ID: %s",
		len(hosts), addr, strings.Join(parts, ", "))
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

func printIndented(lines string) {
	for _, ln := range strings.SplitAfter(lines, "\n") {
		if ln != "" {
			fmt.Print("  " + ln)
		}
	}
}
