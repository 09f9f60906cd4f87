//go:build unix

package hb

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// CheckFileOwner refuses a secret file (the cluster key file, a BMC's
// credentials) owned by someone other than root and the user running this
// process: its owner could read or change the secret.
func CheckFileOwner(fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("owned by uid %d, neither root nor this process's uid %d", st.Uid, os.Geteuid())
	}
	return nil
}
