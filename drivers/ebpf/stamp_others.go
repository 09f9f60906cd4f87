//go:build !linux || vigil_noebpf

package ebpf

// stamper is never made here: newStamper always fails.
type stamper struct{}

func newStamper(uint16) (*stamper, error) { return nil, noEBPF() }

func (*stamper) attach(int) error                  { return noEBPF() }
func (*stamper) detach(int) error                  { return noEBPF() }
func (*stamper) attached() []int                   { return nil }
func (*stamper) read(dst []Stamp) ([]Stamp, error) { return dst, noEBPF() }
func (*stamper) close() error                      { return nil }
func (*stamper) program() ProgramInfo              { return ProgramInfo{} }
