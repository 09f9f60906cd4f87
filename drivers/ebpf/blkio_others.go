//go:build !linux || vigil_noebpf

package ebpf

// blockIO is never made here: newBlockIO always fails.
type blockIO struct {
	events chan DevEvent
}

func newBlockIO(BlockOptions) (*blockIO, error) { return nil, noEBPF() }

func (*blockIO) watch(uint64) error             { return noEBPF() }
func (*blockIO) unwatch(uint64) error           { return noEBPF() }
func (*blockIO) stats(uint64) (DevStats, error) { return DevStats{}, noEBPF() }
func (*blockIO) programs() []ProgramInfo        { return nil }
func (*blockIO) close() error                   { return nil }
