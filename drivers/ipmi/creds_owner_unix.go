//go:build unix

package ipmi

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkOwner refuses a credentials file owned by someone other than root and
// the user running this process: its owner could read or change the
// password. It is the heartbeat key file's rule (package hb).
func checkOwner(fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("owned by uid %d, neither root nor this process's uid %d", st.Uid, os.Geteuid())
	}
	return nil
}
