package lab

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a child process in a network namespace (`ip netns exec`),
// such as `natreveal run`, with its stderr kept as a log.
type Process struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  strings.Builder
	done chan struct{}
	err  error // of cmd.Wait, set before done closes
}

// StartInNS runs argv in namespace ns, with env ("K=V") added to this
// process's environment if not nil, and waits until a stderr line contains
// "running:". On timeout (0: none) or the end of ctx it stops the process.
func StartInNS(ctx context.Context, ns string, argv, env []string, timeout time.Duration) (*Process, error) {
	p := &Process{done: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	pipe, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pipe)
		once := sync.Once{}
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if strings.Contains(sc.Text(), "running:") {
				once.Do(func() { close(ready) })
			}
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	name := strings.Join(append([]string{filepath.Base(argv[0])}, argv[1:]...), " ")
	select {
	case <-ready:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited early:\n%s", name, p.Output())
	case <-ctx.Done():
		p.Stop()
		return nil, ctx.Err()
	case <-expired:
		p.Stop()
		return nil, fmt.Errorf("%s not ready after %v:\n%s", name, timeout, p.Output())
	}
}

// Output is the stderr so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// Pid is the process id of the child (`ip`, which execs argv).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig without waiting.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Done is closed once the process has exited and its stderr is read.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits for the exit and returns the error of exec.Cmd.Wait.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Kill kills the process and waits for it.
func (p *Process) Kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// Stop sends SIGTERM and waits up to 10 s, then kills, with an error.
func (p *Process) Stop() error {
	p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		p.Kill()
		return fmt.Errorf("no exit after SIGTERM:\n%s", p.Output())
	}
}
