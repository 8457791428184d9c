package main

// portset lookup: the server side of the port-set method (RFC 7422
// deterministic NAT). From the plan a NAT published (`natreveal portset
// plan`), name the inside host behind a public address:port.

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/config"
	"github.com/natreveal/natreveal/hostid"
	"github.com/natreveal/natreveal/internal/cli"
	"github.com/natreveal/natreveal/portset"
)

func portsetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "portset",
		Short: "Deterministic NAT (RFC 7422): look up a public address:port in a published plan",
	}
	cmd.AddCommand(portsetLookupCmd())
	return cmd
}

func portsetLookupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lookup --policy FILE ADDR:PORT...",
		Short: "Name the inside host (and its HOST_ID) that used a public address:port",
		Args:  cobra.MinimumNArgs(1),
	}
	policy := cmd.Flags().String("policy", "", "`FILE` of the published policy: the JSON natreveal portset plan prints, or its RFC 7422 line (required)")
	source := cmd.Flags().String("hostid-source", "lower16", "HOST_ID source: lower16, address, hash, map")
	keyFile := cmd.Flags().String("hostid-key-file", "", "key file of the hash source")
	mapFile := cmd.Flags().String("hostid-map-file", "", "map file of the map source")
	bits := cmd.Flags().Int("hostid-bits", 16, "HOST_ID width of the hash and map sources: 16 or 32")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if *policy == "" {
			return cli.UsageErr(&config.Error{Key: "--policy", Msg: "required: the published policy file"})
		}
		p, err := readPolicy(*policy)
		if err != nil {
			return cli.UsageErr(&config.Error{Key: "--policy", Msg: err.Error()})
		}
		if *bits != 16 && *bits != 32 {
			return cli.UsageErr(&config.Error{Key: "--hostid-bits", Msg: fmt.Sprintf("%d is not 16 or 32", *bits)})
		}
		src, err := lookupSource(*source, *keyFile, *mapFile, *bits)
		if err != nil {
			return cli.UsageErr(err)
		}
		var aps []netip.AddrPort
		for _, a := range args {
			ap, err := netip.ParseAddrPort(a)
			if err != nil || !ap.Addr().Unmap().Is4() {
				return cli.UsageErr(&config.Error{Key: "ADDR:PORT", Msg: fmt.Sprintf("%q is not an IPv4 address:port", a)})
			}
			aps = append(aps, ap)
		}
		enc := json.NewEncoder(cmd.OutOrStdout())
		missing := 0
		for _, ap := range aps {
			r := lookupRecord{Public: ap.String()}
			if in, ok := p.Lookup(ap); ok {
				r.Inside = in.String()
				b, _ := p.Forward(in)
				r.Block = b.Ports.String()
				if id, ok := src.HostID(in, 0); ok {
					r.HostID = hostid.Format(id, src.Bits())
					r.Source = *source
				}
			} else {
				missing++
				r.Error = "not in a deterministic block: " + missReason(p, ap)
			}
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		if missing > 0 {
			return cli.Failed(fmt.Errorf("portset lookup: %d of %d not found", missing, len(aps)))
		}
		return nil
	}
	return cmd
}

type lookupRecord struct {
	Public string `json:"public"`
	Inside string `json:"inside,omitempty"`
	HostID string `json:"host_id,omitempty"`
	Block  string `json:"block,omitempty"`
	// Source is the --hostid-source host_id was computed with.
	Source string `json:"hostid_source,omitempty"`
	Error  string `json:"error,omitempty"`
}

// missReason says why p.Lookup finds no host for ap: the port is reserved,
// the address is not the policy's, or the block is past the last one or
// held by no inside host.
func missReason(p portset.Policy, ap netip.AddrPort) string {
	n, err := p.Normalize()
	if err != nil {
		return err.Error()
	}
	addr, port := ap.Addr().Unmap(), ap.Port()
	if !slices.Contains(n.Public, addr) {
		return fmt.Sprintf("%s is not one of the policy's %d public addresses", addr, len(n.Public))
	}
	if port < n.Ports.First {
		return fmt.Sprintf("reserved port: below the policy's first port %d", n.Ports.First)
	}
	if port > n.Ports.Last {
		return fmt.Sprintf("reserved port: past the policy's last port %d", n.Ports.Last)
	}
	end := int(n.Ports.First) + n.Ratio*n.BlockSize - 1
	if int(port) > end {
		return fmt.Sprintf("port past the last block (the %d blocks of %d ports end at %d)", n.Ratio, n.BlockSize, end)
	}
	return fmt.Sprintf("a block no inside host holds (the policy gives blocks to %d of its %d hosts)", p.Deterministic(), p.Hosts())
}

// readPolicy reads a policy file: JSON (a policy or a whole plan) or the
// RFC 7422 §3 log record (one line, timestamp optional).
func readPolicy(file string) (portset.Policy, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return portset.Policy{}, err
	}
	if t := strings.TrimSpace(string(data)); t != "" && !strings.HasPrefix(t, "{") {
		return portset.ParseLogLine(t)
	}
	return portset.ParsePolicy(data)
}

func lookupSource(name, keyFile, mapFile string, bits int) (hostid.Source, error) {
	var key, mf []byte
	var err error
	flag := "--hostid-source" // the flag an error of hostid.New is about
	switch name {
	case "hash":
		flag = "--hostid-key-file"
		if keyFile == "" {
			return nil, &config.Error{Key: flag, Msg: "required with --hostid-source hash"}
		}
		if key, err = os.ReadFile(keyFile); err != nil {
			return nil, &config.Error{Key: flag, Msg: err.Error()}
		}
	case "map":
		flag = "--hostid-map-file"
		if mapFile == "" {
			return nil, &config.Error{Key: flag, Msg: "required with --hostid-source map"}
		}
		if mf, err = os.ReadFile(mapFile); err != nil {
			return nil, &config.Error{Key: flag, Msg: err.Error()}
		}
	}
	src, err := hostid.New(name, bits, key, mf, func(string) (uint32, error) { return 0, nil })
	if err != nil {
		return nil, &config.Error{Key: flag, Msg: err.Error()}
	}
	return src, nil
}
