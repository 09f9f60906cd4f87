//go:build vigil_nohvproc

package cli

func init() { registerNotBuilt("HV_PROC", "lab-vm") }
