// Package features says which build-time features this vigil binary has.
// The Kconfig file at the repository's top declares them; each one's Go
// build tag (vigil_noebpf, vigil_nolab, ...) leaves its code out, and this
// package's constants follow the same tags:
//
//	if !features.HasIPMILAN {
//		return features.NotBuilt("IPMI_LAN")
//	}
//	for _, f := range features.All { fmt.Println(f.Symbol, f.Enabled) }
//
// The constants and All are generated from the Kconfig by tools/kconfig
// (go generate ./firmware/features); the files say DO NOT EDIT.
package features

//go:generate go run ../../tools/kconfig -kconfig ../../Kconfig gen -o .

import (
	"errors"
	"fmt"
)

// Feature is one symbol of the Kconfig.
type Feature struct {
	// Symbol is the Kconfig symbol without CONFIG_: EBPF.
	Symbol string
	// Tag is the Go build tag that leaves the feature out: vigil_noebpf.
	Tag string
	// Prompt is the symbol's one-line prompt.
	Prompt string
	// Summary is the first paragraph of its help.
	Summary string
	// DependsOn is its Kconfig dependency expression, "" for none.
	DependsOn string
	// Enabled says whether this binary has it.
	Enabled bool
}

// ErrNotBuilt is matched with errors.Is by the errors of features this
// binary was built without.
var ErrNotBuilt = errors.New("feature not built in")

// NotBuiltError is the error of a call into a feature the binary was built
// without.
type NotBuiltError struct {
	// Symbol is the Kconfig symbol, without CONFIG_.
	Symbol string
}

func (e *NotBuiltError) Error() string {
	return fmt.Sprintf("vigil was built without CONFIG_%s: rebuild with it enabled (make menuconfig)", e.Symbol)
}

// Is makes the error match ErrNotBuilt.
func (e *NotBuiltError) Is(target error) bool { return target == ErrNotBuilt }

// NotBuilt returns the error of a call into the feature symbol (EBPF,
// IPMI_LAN, ...) when the binary was built without it.
func NotBuilt(symbol string) error { return &NotBuiltError{Symbol: symbol} }

// Lookup returns the feature called symbol (without CONFIG_).
func Lookup(symbol string) (Feature, bool) {
	for _, f := range All {
		if f.Symbol == symbol {
			return f, true
		}
	}
	return Feature{}, false
}
