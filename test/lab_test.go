package test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
	"github.com/natreveal/natreveal/lab/table"
)

// natreveal lab --quick: its JSON holds the truths of the lab. On the clean
// path every method delivers the right HOST_ID of both hosts over each
// transport it applies to, every connection completes; through the router
// that drops optioned packets the SYNs and datagrams carrying ip-option
// never arrive while tcp-option is untouched; and no namespace is left.
// A dead run's leftover namespaces are deleted, a live one's are not.
func TestLabQuick(t *testing.T) {
	needRoot(t)
	// A leftover of a killed run (its pid is dead) and a namespace of a
	// live process (this test) that merely looks like one.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadNS := lab.NSNames(dead.Process.Pid)[4]
	liveNS := lab.NSNames(os.Getpid())[4]
	for _, ns := range []string{deadNS, liveNS} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
		}
	}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", liveNS).Run()
		exec.Command("ip", "netns", "del", deadNS).Run()
	})

	js := filepath.Join(t.TempDir(), "lab.json")
	md := filepath.Join(t.TempDir(), "lab.md")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, labBinary, "lab", "--quick", "--json", js, "--markdown", md)
	var stderr, stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	checkNoNamespaces(t, cmd.Process.Pid)
	if err != nil {
		t.Fatalf("natreveal lab: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	t.Logf("table:\n%s", stdout.String())
	if _, err := os.Stat("/run/netns/" + deadNS); err == nil {
		t.Errorf("the dead run's namespace %s is still there", deadNS)
	}
	if _, err := os.Stat("/run/netns/" + liveNS); err != nil {
		t.Errorf("the live process's namespace %s was deleted", liveNS)
	}
	if b, err := os.ReadFile(md); err != nil || !bytes.Equal(b, stdout.Bytes()) {
		t.Errorf("--markdown file differs from the table printed (%v)", err)
	}

	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	var res table.Result
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	byName := map[string]table.MethodResult{}
	for _, m := range res.Methods {
		byName[m.Name] = m
	}
	for _, want := range table.Methods {
		if _, ok := byName[want.Name]; !ok {
			t.Errorf("method %s missing from the result", want.Name)
		}
	}
	for _, m := range res.Methods {
		for _, tr := range []table.Transport{table.UDP, table.TCP, table.HTTP, table.TLS} {
			c, ok := m.Carried[tr]
			if !ok {
				continue
			}
			if m.Name == "http-header" && tr == table.TLS {
				// Truth: natreveal cannot write into TLS; those bytes pass
				// unchanged (Table 1: Encrypted Traffic "No").
				if c.OK {
					t.Errorf("http-header over TLS reached the server: %+v", c.Hosts)
				}
				continue
			}
			if !c.OK || len(c.Hosts) != 2 {
				t.Errorf("%s over %s: the right HOST_ID did not reach the server for both hosts: %+v", m.Name, tr, c.Hosts)
			}
			for _, h := range c.Hosts {
				if !h.OK || h.Got != h.Want {
					t.Errorf("%s over %s, host %s: got %q want %q (%s)", m.Name, tr, h.Host, h.Got, h.Want, h.Err)
				}
			}
		}
		s := m.Success[lab.PathClean]
		if s == nil {
			t.Errorf("%s: no result on the clean path", m.Name)
		} else if s.Attempted != res.N*countTransports(m) || s.Ratio != 1 || s.Revealed != s.Attempted {
			t.Errorf("%s on the clean path: %+v (tcp %+v udp %+v), want all %d probes completed with the right HOST_ID", m.Name, s, s.TCP, s.UDP, res.N*countTransports(m))
		}
	}
	if m, ok := byName["ip-option"]; ok {
		s := m.Success[lab.PathOptDrop]
		if s == nil || s.TCP == nil || s.UDP == nil || s.TCP.Completed != 0 || s.UDP.Completed != 0 || s.Ratio != 0 {
			t.Errorf("ip-option through the options-dropping router: %+v (tcp %+v udp %+v), want every SYN and datagram dropped", s, s.TCP, s.UDP)
		}
		if !strings.HasPrefix(m.Deployable, "partly") {
			t.Errorf("ip-option deployable %q, want partly", m.Deployable)
		}
	}
	if m, ok := byName["tcp-option"]; ok {
		s := m.Success[lab.PathOptDrop]
		if s == nil || s.Ratio != 1 || s.Revealed != s.Attempted || s.Attempted != res.N {
			t.Errorf("tcp-option through the options-dropping router: %+v, want every connection with its HOST_ID", s)
		}
		for _, p := range lab.Paths {
			if s := m.Success[p]; s == nil || s.Revealed != res.N {
				t.Errorf("tcp-option on path %s: %+v, want all %d with the HOST_ID", p, s, res.N)
			}
		}
	}
	if m, ok := byName["ident"]; ok {
		// Through a second NAT the server asks the wrong box.
		if s := m.Success[lab.PathNAT2]; s == nil || s.Ratio != 1 || s.Revealed != 0 {
			t.Errorf("ident through a second NAT: %+v, want connections completed, no HOST_ID", s)
		}
	}
	if m, ok := byName["port-set"]; ok {
		// No marking: the options-dropping router changes nothing; the
		// second NAT rewrites the source the lookup needs (the server sees
		// the router's address and port, in no block of the policy).
		if s := m.Success[lab.PathOptDrop]; s == nil || s.Ratio != 1 || s.Revealed != s.Attempted {
			t.Errorf("port-set through the options-dropping router: %+v, want every probe with its HOST_ID", s)
		}
		if s := m.Success[lab.PathNAT2]; s == nil || s.Ratio != 1 || s.Revealed != 0 {
			t.Errorf("port-set through a second NAT: %+v, want probes completed, no HOST_ID", s)
		}
		if m.KernelChange || !strings.HasPrefix(m.Deployable, "partly") {
			t.Errorf("port-set: kernel change %v, deployable %q; want none, partly", m.KernelChange, m.Deployable)
		}
	}
	// Blacklisting one host (RFC 6269 §13.1): the server blocks c1 by its
	// HOST_ID; c2, behind the same public address, keeps connecting.
	for name, where := range map[string]string{
		"tcp-option": table.WhereKernel, "ip-id": table.WhereKernel, "ip-option": table.WhereKernel,
		"dest-opt": table.WhereKernel, "port-set": table.WhereKernel,
		"http-header": table.WhereApp, "proxy-protocol": table.WhereApp, "ident": table.WhereApp,
	} {
		m, ok := byName[name]
		if !ok {
			continue
		}
		b := m.Block
		switch {
		case b == nil:
			t.Errorf("%s: no blacklisting measurement", name)
		case b.Where != where || b.Blocked.Host != "c1" || b.Blocked.Attempted != res.N || b.Blocked.Completed != 0 ||
			b.Blocked.Refused != res.N || b.Neighbour.Host != "c2" || b.Neighbour.Attempted != res.N || b.Neighbour.Completed != res.N:
			t.Errorf("%s blacklisting c1: %+v, want c1 %d/%d refused and c2 %d/%d completed, blocked in the %s", name, b, res.N, res.N, res.N, res.N, where)
		}
	}
	if m, ok := byName["hip"]; ok && m.Block != nil {
		t.Errorf("hip blacklisting: %+v, want none measured (no HIP stack to refuse a HIT)", m.Block)
	}
}

// SIGTERM in the middle of a run: the lab deletes its namespaces and exits.
func TestLabSIGTERMCleansUp(t *testing.T) {
	needRoot(t)
	cmd := exec.Command(labBinary, "lab", "--quick")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	names := lab.NSNames(cmd.Process.Pid)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat("/run/netns/" + names[len(names)-1]); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the lab made no namespaces:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // in the middle of its measurements
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("the lab did not stop on SIGTERM:\n%s", out.String())
	}
	if code := cmd.ProcessState.ExitCode(); code == 0 {
		t.Errorf("exit code 0 after SIGTERM, want a failure:\n%s", out.String())
	}
	checkNoNamespaces(t, cmd.Process.Pid)
}

func checkNoNamespaces(t *testing.T, pid int) {
	t.Helper()
	left, err := lab.Leftovers()
	if err != nil {
		t.Fatal(err)
	}
	if ns := left[pid]; len(ns) > 0 {
		t.Errorf("namespaces left behind by pid %d: %v", pid, ns)
		for _, n := range ns {
			exec.Command("ip", "netns", "del", n).Run()
		}
	}
}

func countTransports(m table.MethodResult) int {
	n := 0
	for _, tr := range []table.Transport{table.TCP, table.UDP} {
		if _, ok := m.Carried[tr]; ok {
			n++
		}
	}
	if _, ok := m.Carried[table.TCP]; !ok {
		if _, ok := m.Carried[table.HTTP]; ok {
			n++ // HTTP-only methods are probed with HTTP requests
		}
	}
	if n == 0 {
		n = 1 // hip: one kind of probe
	}
	return n
}
