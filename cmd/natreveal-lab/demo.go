package main

import (
	"context"
	"fmt"
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
	for i, ns := range []string{l.C1, l.C2, l.C1, l.C2} {
		label := fmt.Sprintf("%-16s", fmt.Sprintf("hello-%d", i))
		if err := lab.Connect(ns, srv.Addr(), []byte(label), 10*time.Second); err != nil {
			return err
		}
	}
	time.Sleep(100 * time.Millisecond)
	fmt.Println("server saw:")
	fmt.Printf("  %-22s %-22s %s\n", "source (after NAT)", "RFC 7974 HOST_ID", "IP-ID")
	for _, s := range srv.Seen() {
		opt := "none"
		if s.HasOption {
			opt = fmt.Sprintf("0x%04x (%d bytes)", s.OptionID, s.OptionLen)
		}
		fmt.Printf("  %-22s %-22s 0x%04x\n", s.Src, opt, s.IPID)
	}
	d.Signal(syscall.SIGTERM)
	err = d.Wait()
	printIndented(d.Output()[shown:])
	return err
}

func printIndented(lines string) {
	for _, ln := range strings.SplitAfter(lines, "\n") {
		if ln != "" {
			fmt.Print("  " + ln)
		}
	}
}
