//go:build linux && !vigil_nohvproc

package proc

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The test binary doubles as the VM program: run with vmEnv set, it acts as
// `vigil lab-vm`. It reports to the socket named by vmEnv when its signal
// handling is in place ("NAME ready") and when it receives SIGTERM ("NAME
// term"). A VM named stubborn* ignores SIGTERM; one named crash* exits at
// once with status 3.
const vmEnv = "VIGIL_PROC_TEST_VM"

// events carries the VMs' reports, "NAME ready" or "NAME term".
var events = make(chan string, 64)

func TestMain(m *testing.M) {
	if sock := os.Getenv(vmEnv); sock != "" {
		os.Exit(labVM(sock, os.Args[1:]))
	}
	dir, err := os.MkdirTemp("", "proctest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sock := filepath.Join(dir, "events.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					events <- sc.Text()
				}
			}()
		}
	}()
	os.Setenv(vmEnv, sock)
	code := m.Run()
	l.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// labVM is the VM process: args are "lab-vm --name N --cpu C --memory-mib M".
func labVM(sock string, args []string) int {
	if len(args) != 7 || args[0] != "lab-vm" || args[1] != "--name" {
		fmt.Fprintf(os.Stderr, "bad arguments %q\n", args)
		return 2
	}
	name := args[2]
	fmt.Printf("lab-vm %s: %s\n", name, strings.Join(args[3:], " "))
	if strings.HasPrefix(name, "crash") {
		return 3
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	c, err := net.Dial("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(c, "%s ready\n", name)
	for range sigs {
		fmt.Fprintf(c, "%s term\n", name)
		if !strings.HasPrefix(name, "stubborn") {
			return 0
		}
	}
	return 0
}
