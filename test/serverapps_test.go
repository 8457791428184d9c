package test

// End to end: stock servers act on the revealed HOST_ID (contrib/): fail2ban
// bans one host behind the NAT through guard, nginx denies one host by the
// address in X-Forwarded-For, HAProxy by the source of the PROXY header.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/natreveal/natreveal/lab"
)

// proc is a program running in a namespace, its output in a file; the test
// ends it by its PID.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startProc(t *testing.T, ns string, argv ...string) *proc {
	t.Helper()
	p := &proc{log: filepath.Join(t.TempDir(), filepath.Base(argv[0])+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop() })
	return p
}

// stop sends SIGTERM to the PID, and SIGKILL after 5 s.
func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) output() string { b, _ := os.ReadFile(p.log); return string(b) }

// waitFor polls cond every 100 ms for d.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// dials opens n TCP connections from ns to addr and returns how many
// completed the handshake.
func dials(ns, addr string, n int) int {
	ok := 0
	lab.Do(ns, func() error {
		for i := 0; i < n; i++ {
			if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
				ok++
				c.Close()
			}
		}
		return nil
	})
	return ok
}

// startObserveCtl runs natreveal observe in the server's namespace with a
// control socket of its own and waits until it observes.
func startObserveCtl(t *testing.T, l *lab.Lab, args ...string) (string, *proc) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "observe.sock")
	p := startProc(t, l.Srv, append([]string{serverBinary(t), "observe", "--control", sock}, args...)...)
	if !waitFor(15*time.Second, func() bool { return strings.Contains(p.output(), "observing:") }) {
		t.Fatalf("observe not ready:\n%s", p.output())
	}
	return sock, p
}

// who runs natreveal-server who in the server's namespace.
func who(t *testing.T, l *lab.Lab, sock, src string) (map[string]any, int) {
	out, err := exec.Command("ip", "netns", "exec", l.Srv, serverBinary(t), "who", "--control", sock, src).Output()
	var m map[string]any
	json.Unmarshal(out, &m)
	return m, exitCode(err)
}

// `natreveal-server who` maps a connection's (address, port) to its HOST_ID, and
// `guard block --from` blocks that pair.
func TestWhoAndBlockFrom(t *testing.T) {
	l := newLab(t)
	listen(t, l)
	d := startDaemon(t, l, "--inside", lab.InsidePrefix, "--methods", "tcp-option")
	defer d.stop(t)
	sock, _ := startObserveCtl(t, l, "--methods", "tcp-option", "--ports", "8080")
	var c1src string
	lab.Do(l.C1, func() error {
		c, err := net.DialTimeout("tcp", srvAddr, 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		// The public port: the NAT keeps the inside port when it is free.
		_, port, _ := net.SplitHostPort(c.LocalAddr().String())
		c1src = net.JoinHostPort(lab.NATPublic, port)
		return nil
	})
	var m map[string]any
	var code int
	waitFor(5*time.Second, func() bool { m, code = who(t, l, sock, c1src); return code == 0 })
	if code != 0 || m["host_id"] != "0x0002" || m["method"] != "tcp-option" || m["src"] != c1src {
		t.Fatalf("who %s: exit %d, %v; want 0x0002 tcp-option", c1src, code, m)
	}
	if _, code := who(t, l, sock, lab.NATPublic+":1"); code != 1 {
		t.Errorf("who of an unseen source: exit %d, want 1", code)
	}
	if _, code := who(t, l, sock, "nonsense"); code != 2 {
		t.Errorf("who of bad input: exit %d, want 2", code)
	}

	mustGuard(t, l, "install", "--nat", lab.NATPublic, "--methods", "tcp-option", "--action", "reject")
	defer guardRun(t, l, "remove")
	mustGuard(t, l, "block", "--control", sock, "--from", c1src)
	if got := dials(l.C1, srvAddr, 5); got != 0 {
		t.Errorf("c1 blocked --from %s: %d of 5 connected, want 0", c1src, got)
	}
	if got := dials(l.C2, srvAddr, 5); got != 5 {
		t.Errorf("c2: %d of 5 connected, want 5", got)
	}
	if p := pairs(guardList(t, l)); len(p) != 1 || p[0] != lab.NATPublic+" 0x2" {
		t.Errorf("guard list: %v, want c1's pair alone", p)
	}
	mustGuard(t, l, "unblock", "--control", sock, "--from", c1src)
	if got := dials(l.C1, srvAddr, 5); got != 5 {
		t.Errorf("c1 unblocked: %d of 5 connected, want 5", got)
	}
}

// pairs are the distinct (address, HOST_ID) pairs of guard list entries
// (guard blocks a pair in the 2- and the 4-byte set of a method).
func pairs(es []guardEntry) []string {
	var out []string
	for _, e := range es {
		id, _ := strconv.ParseUint(e.HostID, 0, 32)
		p := fmt.Sprintf("%s %#x", e.Addr, id)
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// A stock fail2ban jail (contrib/fail2ban) reads a real sshd's log and bans
// the one host behind the NAT that fails logins: its (address, HOST_ID) pair
// is blocked in the server's kernel, its neighbour keeps connecting, and
// fail2ban's unban unblocks it.
func TestFail2banBansOneHost(t *testing.T) {
	needTools(t, "fail2ban-client", "/usr/sbin/sshd", "ssh", "ssh-keygen")
	l := newLab(t)
	dir := t.TempDir()
	d := startDaemon(t, l, "--inside", lab.InsidePrefix, "--methods", "tcp-option")
	defer d.stop(t)
	mustGuard(t, l, "install", "--nat", lab.NATPublic, "--methods", "tcp-option", "--action", "reject")
	defer guardRun(t, l, "remove")
	sock, _ := startObserveCtl(t, l, "--methods", "tcp-option", "--ports", "2222")

	// sshd, logging to a file of its own.
	sshAddr := lab.ServerAddr + ":2222"
	sshLog := filepath.Join(dir, "sshd.log")
	key := filepath.Join(dir, "host_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	os.MkdirAll("/run/sshd", 0o755) // privilege separation directory
	sshdConf := filepath.Join(dir, "sshd_config")
	writeFile(t, sshdConf, fmt.Sprintf(`Port 2222
ListenAddress %s
HostKey %s
PidFile %s
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
MaxStartups 100
LogLevel INFO
`, lab.ServerAddr, key, filepath.Join(dir, "sshd.pid")))
	startProc(t, l.Srv, "/usr/sbin/sshd", "-D", "-f", sshdConf, "-E", sshLog)
	if !waitFor(10*time.Second, func() bool { return dials(l.C2, sshAddr, 1) == 1 }) {
		b, _ := os.ReadFile(sshLog)
		t.Fatalf("sshd does not answer:\n%s", b)
	}

	// fail2ban with contrib's filter and action, its socket, pid and
	// database under dir, in the server's namespace (the action's guard
	// acts there).
	f2b := filepath.Join(dir, "fail2ban")
	for _, sub := range []string{"action.d", "filter.d"} {
		os.MkdirAll(filepath.Join(f2b, sub), 0o755)
	}
	copyFile(t, "../contrib/fail2ban/action.d/natreveal-guard.conf", filepath.Join(f2b, "action.d/natreveal-guard.conf"))
	copyFile(t, "../contrib/fail2ban/filter.d/natreveal-sshd.conf", filepath.Join(f2b, "filter.d/natreveal-sshd.conf"))
	f2bSock := filepath.Join(dir, "f2b.sock")
	writeFile(t, filepath.Join(f2b, "fail2ban.conf"), fmt.Sprintf(`[Definition]
loglevel = INFO
logtarget = STDERR
socket = %s
pidfile = %s
dbfile = :memory:
`, f2bSock, filepath.Join(dir, "f2b.pid")))
	writeFile(t, filepath.Join(f2b, "jail.conf"), fmt.Sprintf(`[natreveal-sshd]
enabled = true
filter = natreveal-sshd
datepattern = {NONE}
logpath = %s
backend = polling
action = natreveal-guard[natreveal=%s, control=%s]
maxretry = 3
findtime = 60
bantime = 600
`, sshLog, serverBinary(t), sock))
	f2bc := func(args ...string) (string, error) {
		out, err := exec.Command("ip", append([]string{"netns", "exec", l.Srv, "fail2ban-client", "-c", f2b}, args...)...).CombinedOutput()
		return string(out), err
	}
	srv := startProc(t, l.Srv, "fail2ban-client", "-c", f2b, "-x", "-f", "start")
	if !waitFor(20*time.Second, func() bool { _, err := f2bc("status", "natreveal-sshd"); return err == nil }) {
		t.Fatalf("fail2ban not up:\n%s", srv.output())
	}

	// c1 fails three logins; each sshd line names its public port.
	sshTry := func(ns string) {
		exec.Command("ip", "netns", "exec", ns, "ssh", "-F", "/dev/null", "-p", "2222", "-o", "BatchMode=yes",
			"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=3",
			"intruder@"+lab.ServerAddr, "true").Run()
	}
	for i := 0; i < 3; i++ {
		sshTry(l.C1)
	}
	banned := func() []guardEntry {
		var e []guardEntry
		out, _ := guardRun(t, l, "list")
		json.Unmarshal([]byte(out), &e)
		return e
	}
	if !waitFor(20*time.Second, func() bool { return len(banned()) > 0 }) {
		b, _ := os.ReadFile(sshLog)
		t.Fatalf("fail2ban banned nothing\nsshd log:\n%s\nfail2ban:\n%s", b, srv.output())
	}
	if p := pairs(banned()); len(p) != 1 || p[0] != lab.NATPublic+" 0x2" {
		t.Fatalf("banned %v, want c1's pair (%s, 0x2) alone", p, lab.NATPublic)
	}
	if got := dials(l.C1, sshAddr, 5); got != 0 {
		t.Errorf("c1, banned: %d of 5 connections to sshd completed, want 0", got)
	}
	if got := dials(l.C2, sshAddr, 5); got != 5 {
		t.Errorf("c2, its neighbour: %d of 5 connections to sshd completed, want 5", got)
	}

	// fail2ban's unban unblocks the pair.
	if out, err := f2bc("set", "natreveal-sshd", "unbanip", lab.NATPublic); err != nil {
		t.Fatalf("unbanip: %v\n%s", err, out)
	}
	if !waitFor(10*time.Second, func() bool { return len(banned()) == 0 }) {
		t.Fatalf("still blocked after unban: %+v\nfail2ban:\n%s", banned(), srv.output())
	}
	if got := dials(l.C1, sshAddr, 5); got != 5 {
		t.Errorf("c1 after unban: %d of 5 completed, want 5", got)
	}
}

// startNginx runs nginx in the server's namespace, its files under dir,
// serving the server blocks given.
func startNginx(t *testing.T, l *lab.Lab, dir, servers string) *proc {
	t.Helper()
	conf := filepath.Join(dir, "nginx.conf")
	writeFile(t, conf, fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	%[2]s
}
`, dir, servers))
	return startProc(t, l.Srv, "nginx", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf)
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b))
}

// httpStatus GETs url from ns and returns the status and the body, with
// the X-Client header (nginx's $remote_addr) in front when there is one.
func httpStatus(t *testing.T, ns, url string) (int, string) {
	t.Helper()
	c := client(ns)
	c.Timeout = 5 * time.Second
	resp, err := c.Get(url)
	if err != nil {
		t.Errorf("%s: GET %s: %v", ns, url, err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if c := resp.Header.Get("X-Client"); c != "" {
		b = append([]byte(c+" "), b...)
	}
	return resp.StatusCode, string(b)
}

// nginx with contrib/nginx's realip recipe denies c1 by the inside address
// natreveal's http-header method writes into X-Forwarded-For, and serves its
// neighbour c2.
func TestNginxDeniesOneHost(t *testing.T) {
	needTools(t, "nginx")
	l := newLab(t)
	dir := t.TempDir()
	recipe, err := filepath.Abs("../contrib/nginx/natreveal-realip.conf")
	if err != nil {
		t.Fatal(err)
	}
	server := fmt.Sprintf(`server {
		listen %[1]s;
		include %[2]s;
		# return would answer before the access phase, where deny acts.
		location / { root %[3]s/www; add_header X-Client $remote_addr; }
	}`, httpAddr, recipe, dir)
	os.MkdirAll(filepath.Join(dir, "www"), 0o755)
	writeFile(t, filepath.Join(dir, "www/index.html"), "hello\n")
	ng := startNginx(t, l, dir, server)
	if !waitFor(10*time.Second, func() bool { return dials(l.C2, httpAddr, 1) == 1 }) {
		t.Fatalf("nginx does not answer:\n%s", ng.output())
	}
	d := startDaemon(t, l, "--config", writeConfig(t, `inside: [100.64.0.0/24]
methods: [http-header]
hostid:
  source: address
http_header:
  ports: [80]
  fields: [x-forwarded-for]
`))
	defer d.stop(t)
	url := "http://" + httpAddr + "/"
	for i := 0; i < 5; i++ {
		if code, body := httpStatus(t, l.C1, url); code != http.StatusForbidden {
			t.Errorf("c1, denied: %d %q, want 403", code, body)
		}
		if code, body := httpStatus(t, l.C2, url); code != http.StatusOK || body != lab.Client2+" hello\n" {
			t.Errorf("c2, its neighbour: %d %q, want 200 from %s", code, body, lab.Client2)
		}
	}
}

// HAProxy with contrib/haproxy's recipe reads the PROXY header natreveal's
// proxy-protocol method sends from the NAT, denies c1 by the revealed source
// and serves its neighbour c2.
func TestHAProxyDeniesOneHost(t *testing.T) {
	needTools(t, "haproxy")
	l := newLab(t)
	dir := t.TempDir()
	global := filepath.Join(dir, "global.cfg")
	writeFile(t, global, fmt.Sprintf(`global
	pidfile %s/haproxy.pid
defaults
	timeout connect 5s
	timeout client 5s
	timeout server 5s
`, dir))
	hp := startProc(t, l.Srv, "haproxy", "-db", "-f", global, "-f", "../contrib/haproxy/natreveal.cfg")
	addr := lab.ServerAddr + ":7000"
	if !waitFor(10*time.Second, func() bool { return dials(l.C2, addr, 1) == 1 }) {
		t.Fatalf("haproxy does not answer:\n%s", hp.output())
	}
	d := startDaemon(t, l, "--config", writeConfig(t, `inside: [100.64.0.0/24]
methods: [proxy-protocol]
proxy_protocol:
  version: 2
  destinations: [198.51.100.1:7000]
`))
	defer d.stop(t)
	url := "http://" + addr + "/"
	for i := 0; i < 5; i++ {
		if code, body := httpStatus(t, l.C1, url); code != http.StatusForbidden {
			t.Errorf("c1, denied: %d %q, want 403", code, body)
		}
		if code, body := httpStatus(t, l.C2, url); code != http.StatusOK || body != "hello "+lab.Client2+"\n" {
			t.Errorf("c2, its neighbour: %d %q, want 200 \"hello %s\"", code, body, lab.Client2)
		}
	}
}
