//go:build vigil_nolab

package cli

func init() { registerNotBuilt("LAB", "lab", "demo") }
