//go:build vigil_nosim

package cli

func init() { registerNotBuilt("SIM", "sim") }
