//go:build vigil_noebpf

package cli

func init() { registerNotBuilt("EBPF", "ebpf") }
