//go:build !linux || vigil_noebpf

package ebpf

// exits is never made here: newExits always fails.
type exits struct {
	c chan Exit
}

func newExits() (*exits, error) { return nil, noEBPF() }

func (*exits) watch(int) error         { return noEBPF() }
func (*exits) unwatch(int) error       { return noEBPF() }
func (*exits) watched() []int          { return nil }
func (*exits) lost() uint64            { return 0 }
func (*exits) programs() []ProgramInfo { return nil }
func (*exits) close() error            { return nil }
