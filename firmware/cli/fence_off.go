//go:build vigil_noipmilan

package cli

func init() { registerNotBuilt("IPMI_LAN", "fence", "fence-agent") }
