//go:build !vigil_nohvproc

package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLabVM(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{name: "runs until a signal", args: []string{"--name", "web1", "--cpu", "2", "--memory-mib", "512"}, code: 0,
			stdout: fmt.Sprintf("lab-vm web1: 2 CPU, 512 MiB, pid %d: running until SIGTERM\n", os.Getpid())},
		{name: "help", args: []string{"--help"}, code: 0, stdout: "usage: vigil lab-vm"},
		{name: "no name", args: []string{"--cpu", "1", "--memory-mib", "1"}, code: 2, stderr: "--name is required"},
		{name: "no cpu", args: []string{"--name", "x", "--memory-mib", "1"}, code: 2, stderr: "at least 1"},
		{name: "no memory", args: []string{"--name", "x", "--cpu", "1"}, code: 2, stderr: "at least 1"},
		{name: "bad number", args: []string{"--name", "x", "--cpu", "two"}, code: 2, stderr: "invalid value"},
		{name: "extra argument", args: []string{"--name", "x", "--cpu", "1", "--memory-mib", "1", "more"}, code: 2, stderr: `unexpected argument "more"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sigs := make(chan os.Signal, 1)
			sigs <- syscall.SIGTERM
			var out, errb bytes.Buffer
			code := labVM(tc.args, &out, &errb, sigs)
			if code != tc.code {
				t.Errorf("exit %d; want %d (stderr %q)", code, tc.code, errb.String())
			}
			if !strings.HasPrefix(out.String(), tc.stdout) || tc.stdout == "" && out.Len() > 0 {
				t.Errorf("stdout %q; want %q", out.String(), tc.stdout)
			}
			if !strings.Contains(errb.String(), tc.stderr) || tc.stderr == "" && errb.Len() > 0 {
				t.Errorf("stderr %q; want %q", errb.String(), tc.stderr)
			}
		})
	}
}

func TestLabVMRegistered(t *testing.T) {
	c, ok := commands["lab-vm"]
	if !ok || c.Summary != "a lab VM process (started by the process hypervisor)" {
		t.Fatalf("lab-vm command %+v, registered %v", c, ok)
	}
}

// TestLabVMWaits: the VM prints its line, then runs until the signal.
func TestLabVMWaits(t *testing.T) {
	r, w := io.Pipe()
	sigs := make(chan os.Signal, 1)
	done := make(chan int, 1)
	go func() {
		done <- labVM([]string{"--name", "a", "--cpu", "1", "--memory-mib", "1"}, w, io.Discard, sigs)
		w.Close()
	}()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "lab-vm a: ") {
		t.Fatalf("line %q, %v", line, err)
	}
	select {
	case code := <-done:
		t.Fatalf("returned %d before any signal", code)
	default:
	}
	sigs <- os.Interrupt
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after SIGINT; want 0", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still running after SIGINT")
	}
}

// TestLabVMExitAfter: --exit-after makes the process crash (status 1)
// when no signal came first.
func TestLabVMExitAfter(t *testing.T) {
	var out, errb bytes.Buffer
	code := labVM([]string{"--name", "app", "--cpu", "1", "--memory-mib", "1", "--exit-after", "1ms"}, &out, &errb, make(chan os.Signal))
	if code != 1 || !strings.Contains(errb.String(), "lab-vm app: exiting after 1ms, as asked") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}
