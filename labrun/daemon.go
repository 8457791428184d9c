package labrun

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// daemon is `natreveal run` in the NAT namespace, a child process.
type daemon struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  strings.Builder
	done chan struct{}
}

// startDaemon runs bin with args in namespace ns and waits (at most 15 s)
// until it says it is running.
func startDaemon(ctx context.Context, bin, ns string, args []string) (*daemon, error) {
	d := &daemon{done: make(chan struct{})}
	d.cmd = exec.Command("ip", append([]string{"netns", "exec", ns, bin, "run"}, args...)...)
	pipe, err := d.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pipe)
		once := sync.Once{}
		for sc.Scan() {
			d.mu.Lock()
			d.log.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
			if strings.Contains(sc.Text(), "running:") {
				once.Do(func() { close(ready) })
			}
		}
		d.cmd.Wait()
		close(d.done)
	}()
	select {
	case <-ready:
		return d, nil
	case <-d.done:
		return nil, fmt.Errorf("natreveal run %s exited early:\n%s", strings.Join(args, " "), d.output())
	case <-ctx.Done():
		d.stop()
		return nil, ctx.Err()
	case <-time.After(15 * time.Second):
		d.stop()
		return nil, fmt.Errorf("natreveal run %s not ready after 15 s:\n%s", strings.Join(args, " "), d.output())
	}
}

func (d *daemon) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// stop sends SIGTERM and waits up to 10 s, then kills.
func (d *daemon) stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
}
