package proc

// Exits is a source of VM process exits faster than a pidfd's wake-up:
// the kernel's exit tracer (drivers/ebpf). The hypervisor asks it to watch
// each VM process and expects Exited for each exit it reports; the pidfds
// stay, to reap the processes and to catch what the source misses.
type Exits interface {
	Watch(pid int) error
	Unwatch(pid int) error
}
