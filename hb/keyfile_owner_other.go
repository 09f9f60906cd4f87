//go:build !unix

package hb

import "io/fs"

// CheckFileOwner has no owner to check outside Unix.
func CheckFileOwner(fs.FileInfo) error { return nil }
