package main

// mapping lookup: merge the RFC 6888 §4 mapping logs of several NAT nodes
// (an HA pair, or several active NATs) by time and name the inside host that
// held a public address:port at a time.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/natreveal/natreveal/config"
	"github.com/natreveal/natreveal/conntrack"
	"github.com/natreveal/natreveal/internal/cli"
	"github.com/natreveal/natreveal/mapping"
)

func mappingCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mapping",
		Short: "RFC 6888 mapping logs of one or more NAT nodes: merge them, look up a public address:port at a time",
	}
	cmd.AddCommand(mappingMergeCmd(), mappingLookupCmd())
	return cmd
}

// readLogs reads and merges the logs named by --log.
// readLogs merges the logs of files; last is the time of their latest record.
func readLogs(files []string) (bs []mapping.Binding, last time.Time, err error) {
	if len(files) == 0 {
		return nil, last, cli.UsageErr(&config.Error{Key: "--log", Msg: "required: one mapping log per node (mapping_log.file)"})
	}
	var logs [][]mapping.Record
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, last, cli.UsageErr(&config.Error{Key: "--log", Msg: err.Error()})
		}
		recs, err := mapping.Read(fh, f)
		fh.Close()
		var le *mapping.LineError
		switch {
		case errors.As(err, &le): // not a mapping log, or a damaged one
			return nil, last, cli.UsageErr(err)
		case err != nil:
			return nil, last, cli.Failed(err)
		}
		logs = append(logs, recs)
	}
	return mapping.Merge(logs...), mapping.Last(logs...), nil
}

func mappingMergeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "merge --log FILE [--log FILE]...",
		Short: "Print the merged bindings, one JSON object per line, by start time",
		Args:  cli.NoArgs,
	}
	logs := cmd.Flags().StringArray("log", nil, "a node's mapping log (repeat for each node)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		bs, _, err := readLogs(*logs)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(cmd.OutOrStdout())
		for _, b := range bs {
			if err := enc.Encode(b); err != nil {
				return err
			}
		}
		return nil
	}
	return cmd
}

type mappingAnswer struct {
	Public   string            `json:"public"`
	Time     string            `json:"time"`
	Inside   string            `json:"inside,omitempty"`
	HostID   string            `json:"host_id,omitempty"`
	Bindings []mapping.Binding `json:"bindings,omitempty"`
	// Open: a binding of the answer has no end in the logs (no destroy
	// record), so it is taken as held at any later time; the host may have
	// released the port after the log stopped.
	Open bool `json:"open,omitempty"`
	// AfterLogEnd: the lookup's time is after the logs' latest record
	// (LogEnd); the logs say nothing of that time.
	AfterLogEnd bool   `json:"after_log_end,omitempty"`
	LogEnd      string `json:"log_end,omitempty"`
	Error       string `json:"error,omitempty"`
}

func mappingLookupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lookup --log FILE [--log FILE]... [--at TIME] ADDR:PORT...",
		Short: "Name the inside host (and HOST_ID) that held a public address:port at a time",
		Args:  cobra.MinimumNArgs(1),
	}
	logs := cmd.Flags().StringArray("log", nil, "a node's mapping log (repeat for each node)")
	protoFlag := cmd.Flags().String("proto", "tcp", "protocol as the log names it: tcp, udp, sctp, icmp, ipv6-icmp or a protocol number")
	atFlag := cmd.Flags().String("at", "", "time of the lookup, RFC 3339 (default: now)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		t := time.Now()
		if *atFlag != "" {
			var err error
			if t, err = time.Parse(time.RFC3339Nano, *atFlag); err != nil {
				return cli.UsageErr(&config.Error{Key: "--at", Msg: fmt.Sprintf("%q is not an RFC 3339 time", *atFlag)})
			}
		}
		proto, err := mappingProto(*protoFlag)
		if err != nil {
			return err
		}
		var aps []netip.AddrPort
		for _, a := range args {
			ap, err := netip.ParseAddrPort(a)
			if err != nil {
				return cli.UsageErr(&config.Error{Key: "ADDR:PORT", Msg: fmt.Sprintf("%q is not an address:port", a)})
			}
			aps = append(aps, ap)
		}
		bs, last, err := readLogs(*logs)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(cmd.OutOrStdout())
		missing := 0
		for _, ap := range aps {
			found := mapping.Lookup(bs, proto, ap, t)
			r := mappingAnswer{Public: ap.String(), Time: t.UTC().Format(time.RFC3339Nano), Bindings: found}
			for _, b := range found {
				r.Open = r.Open || b.Open()
			}
			if t.After(last) {
				r.AfterLogEnd, r.LogEnd = true, last.UTC().Format(time.RFC3339Nano)
			}
			switch hosts := mapping.Hosts(found); len(hosts) {
			case 0:
				missing++
				r.Error = "no binding at that time"
			case 1:
				r.Inside, r.HostID = hosts[0], found[len(found)-1].HostID
			default:
				missing++
				r.Error = fmt.Sprintf("%d inside hosts shared the port then (different destinations): log the destination (mapping_log.destination) to tell them apart", len(hosts))
			}
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		if missing > 0 {
			return cli.Failed(fmt.Errorf("mapping lookup: %d of %d without one answer", missing, len(aps)))
		}
		return nil
	}
	return cmd
}

// mappingProto reads --proto as a mapping log spells protocols
// (conntrack.ProtoName): a name in any case, or a number 0-255.
func mappingProto(s string) (string, error) {
	l := strings.ToLower(s)
	if n, err := strconv.ParseUint(l, 10, 8); err == nil {
		return conntrack.ProtoName(uint8(n)), nil
	}
	for p := range 256 {
		if conntrack.ProtoName(uint8(p)) == l {
			return l, nil
		}
	}
	return "", cli.UsageErr(&config.Error{Key: "--proto", Msg: fmt.Sprintf("%q is not a protocol: tcp, udp, sctp, icmp, ipv6-icmp or a number 0-255", s)})
}
