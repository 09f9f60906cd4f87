//go:build !unix

package hb

import "io/fs"

// checkKeyFileOwner has no owner to check outside Unix.
func checkKeyFileOwner(fs.FileInfo) error { return nil }
