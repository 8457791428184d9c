package test

import (
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The natreveal-server binary under test, built once, next to binary, by
// the first test that needs it.
var server struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// serverBinary builds natreveal-server (serve, observe, decode, portset
// lookup) once and returns its path.
func serverBinary(t *testing.T) string {
	t.Helper()
	server.once.Do(func() {
		server.path = filepath.Join(filepath.Dir(binary), "natreveal-server")
		server.out, server.err = exec.Command("go", "build", "-o", server.path, "../cmd/natreveal-server").CombinedOutput()
	})
	if server.err != nil {
		t.Fatalf("build natreveal-server: %v\n%s", server.err, server.out)
	}
	return server.path
}
