package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"

	"github.com/spf13/cobra"
	ct "github.com/ti-mo/conntrack"
	"golang.org/x/sys/unix"

	"github.com/natreveal/natreveal/config"
	"github.com/natreveal/natreveal/conntrack"
	"github.com/natreveal/natreveal/internal/cli"
	methodportset "github.com/natreveal/natreveal/method/portset"
)

func checkCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Say what this kernel offers natreveal, one line each; exit 0 when `run` can work (with --config: exit 2 on a bad configuration)",
		Args:  cli.NoArgs,
	}
	config.AddFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		out := cmd.OutOrStdout()
		ok := true
		line := func(name string, good bool, detail string) { checkLine(out, name, good, detail) }
		// With a configuration (--config, NATREVEAL_CONFIG or flags), check
		// it as run would, files included: systemd's ExecStartPre.
		if cmd.Flags().Changed("config") || cmd.Flags().Changed("inside") || os.Getenv("NATREVEAL_CONFIG") != "" {
			c, err := config.Load(cmd.Flags(), os.Getenv)
			if err == nil {
				err = validRules(c)
			}
			if err == nil {
				_, err = hostIDSource(c)
			}
			if err != nil {
				return usageErr(err)
			}
			line("config", true, fmt.Sprintf("inside %v, methods %v, %s, table %s", c.Inside, c.Methods, c.Placement, c.Table))
			if w := portSetWarning(c); w != "" {
				checkMark(out, "warn", "port-set", w)
			}
		}

		if m, err := probe(); err != nil {
			ok = false
			line("queue", false, err.Error())
		} else {
			line("queue", true, "run will use the "+m.String())
		}

		if err := checkConntrack(); err != nil {
			line("ctnetlink", false, err.Error()+" (needed for flow eviction, and by post-nat placement for packets that carry a mark)")
			ok = false
		} else {
			line("ctnetlink", true, "conntrack lookups and destroy events available")
		}

		if cmd.Flags().Changed("config") {
			// the netns line is for tests and the lab; a service has no use for it
		} else if err := checkNetns(); err != nil {
			line("netns", false, err.Error()+" (needed by the tests and the lab, not by run)")
		} else {
			line("netns", true, "network namespaces can be created (tests, lab)")
		}
		if !ok {
			return cli.Failed(fmt.Errorf("check: run cannot work on this kernel"))
		}
		return nil
	}
	return cmd
}

// checkLine prints one line of check. Not inlined: the copies cost the
// router build (TestRouterBinarySize).
//
//go:noinline
func checkLine(w io.Writer, name string, good bool, detail string) {
	mark := "ok  "
	if !good {
		mark = "FAIL"
	}
	checkMark(w, mark, name, detail)
}

// checkMark prints one line of check with its mark: "ok  ", "FAIL", or
// "warn" (run works, but not as the configuration may intend; the exit
// code stays that of the other lines).
//
//go:noinline
func checkMark(w io.Writer, mark, name, detail string) {
	fmt.Fprintf(w, "%s %-10s %s\n", mark, name, detail)
}

// portSetWarning is what check warns of in a port-set policy run accepts:
// blocks for fewer hosts than the inside prefixes hold (RFC 7422 §2 gives
// every inside address a block; the others take the masquerade's ports,
// which no lookup in the published plan names).
func portSetWarning(c *config.Config) string {
	if !c.Has(methodportset.Name) || !c.HasPortSetPolicy() {
		return ""
	}
	p, err := c.PortSet.Policy.Normalize()
	if err != nil {
		return "" // config.Load reported it
	}
	det, hosts := p.Deterministic(), p.Hosts()
	if det >= hosts {
		return ""
	}
	return fmt.Sprintf("block_size: %d ports give blocks to %d of %d inside hosts; the other %d take the masquerade's ports (not deterministic)",
		p.BlockSize, det, hosts, hosts-det)
}

// checkConntrack asks ctnetlink for a flow that cannot exist: "no such
// entry" proves lookups work. (StatsGlobal blocks on this kernel.)
func checkConntrack() error {
	c, err := conntrack.Dial()
	if err != nil {
		return err
	}
	defer c.Close()
	lo := netip.MustParseAddr("127.0.0.1")
	_, err = c.Get(ct.NewFlow(unix.IPPROTO_TCP, 0, lo, lo, 1, 1, 0, 0))
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("query: %w", err)
	}
	return nil
}

// checkNetns creates a network namespace on a thread that is then thrown away.
func checkNetns() error {
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return fmt.Errorf("no /proc/self/ns/net: %w", err)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		errc <- unix.Unshare(unix.CLONE_NEWNET)
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	return nil
}
