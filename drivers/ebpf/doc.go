// Package ebpf is vigil's kernel evidence: small eBPF programs that see
// what the agent, a user-space process, cannot see reliably.
//
//   - Stamper: a TCX ingress program on each heartbeat NIC counts, per
//     (device, source address), the heartbeat packets that reached the
//     kernel and stamps the last one's arrival. A peer whose packets reach
//     the kernel is not silent, even while the agent is starved; a gap
//     between what the kernel saw and what the agent read is the agent's
//     own stall.
//   - BlockIO: the block_rq_issue and block_rq_complete tracepoints, kept
//     for the datastore devices only: requests in flight and the age of
//     the oldest, a latency histogram, errors. A device whose requests are
//     all stuck, or failing, is reported down in milliseconds, long before
//     any read times out.
//   - Exits: sched_process_exit, for the processes the agent watches (VM
//     processes, monitored daemons), through a ring buffer: a dead VM is
//     seen the moment its last thread exits, without polling.
//
// Probe says which of them this kernel can run; each can be turned off,
// and the agent then falls back to user-space evidence (socket receive
// stamps, I/O timeouts, pidfds). The programs are C, compiled by bpf2go
// into the committed *_bpfel.o and *_bpfel.go files, so that a build needs
// no compiler; `make generate` rebuilds them.
//
// Every time here is CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns, as a
// time.Duration since boot: see Monotonic.
//
// The package is Linux only, and the vigil_noebpf build tag leaves it out:
// elsewhere every constructor returns an error wrapping ErrUnsupported.
package ebpf
