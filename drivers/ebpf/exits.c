//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// exits: the exit of each watched process, from the classic tracepoint
// sched/sched_process_exit, through a ring buffer. A process is reported
// once, when its last thread exits, with the status its parent's wait will
// see; its entry then leaves the watch map. Any other exit costs a field
// test, and the last thread of a process one hash lookup.
//
// Built by bpf2go (see exits.go), with the system's UAPI and libbpf headers.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

// signal_struct.flags: the whole thread group exits (exit_group, a fatal
// signal); group_exit_code then holds the status.
#define SIGNAL_GROUP_EXIT 0x00000004

// The tracepoint's record, as its format file under
// /sys/kernel/tracing/events/sched/sched_process_exit/ describes it.
struct exit_args {
	__u64 common; // common_type, common_flags, common_preempt_count, common_pid
	char comm[16];
	__s32 pid; // the exiting thread
	__s32 prio;
	__u8 group_dead; // bool: the thread group's last live thread
};

// The kernel's structures, as far as they are read; CO-RE relocates the
// field offsets against the running kernel's BTF.
struct signal_struct {
	int group_exit_code;
	unsigned int flags;
} __attribute__((preserve_access_index));

struct task_struct {
	int exit_code;
	struct task_struct *group_leader;
	struct signal_struct *signal;
} __attribute__((preserve_access_index));

// The watched processes, by thread-group id.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} watched SEC(".maps");

// An exit, as pushed to the ring buffer; user space decodes it by hand
// (exitOf in exits.go): keep the two in step.
struct exit_event {
	__u64 ns;     // bpf_ktime_get_ns when the last thread exited
	__u32 pid;    // the thread-group id
	__s32 status; // the wait status: exit code << 8, or the signal number
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 65536);
} exits SEC(".maps");

// Exits lost because the ring buffer was full.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

SEC("tracepoint/sched/sched_process_exit")
int proc_exit(struct exit_args *ctx)
{
	if (!ctx->group_dead)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	// The exiting task is current; its thread-group id is the upper half.
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	// Deleting is the lookup: one report per process.
	if (bpf_map_delete_elem(&watched, &tgid) != 0)
		return 0;

	// The status as wait reports it: the group's exit code when the
	// group exits as a whole, else the leader's own.
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__s32 status;
	if (BPF_CORE_READ(task, signal, flags) & SIGNAL_GROUP_EXIT)
		status = BPF_CORE_READ(task, signal, group_exit_code);
	else
		status = BPF_CORE_READ(task, group_leader, exit_code);

	struct exit_event *ev = bpf_ringbuf_reserve(&exits, sizeof(*ev), 0);
	if (!ev) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);
		if (n)
			__sync_fetch_and_add(n, 1);
		return 0;
	}
	ev->ns = now;
	ev->pid = tgid;
	ev->status = status;
	bpf_ringbuf_submit(ev, 0);
	return 0;
}

char __license[] SEC("license") = "Dual BSD/GPL";
