//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// blkio: block I/O health of the watched devices, from the classic
// tracepoints block/block_rq_issue and block/block_rq_complete. Per device:
// requests issued, completed and in flight, the start of the current period
// without a completion, the last success and the last failure, and a
// latency histogram. A failed completion is also pushed to a ring buffer,
// so that user space wakes at once. A device that is not watched costs one
// hash lookup per tracepoint.
//
// Built by bpf2go (see blkio.go), with the system's UAPI and libbpf headers.

#include <linux/bpf.h>
#include <asm-generic/errno-base.h>
#include <bpf/bpf_helpers.h>

#define HIST_BUCKETS 24

// The tracepoints' records, as their format files under
// /sys/kernel/tracing/events/block/ describe them. Only the fixed fields
// up to the last one read are declared.
struct rq_issue_args {
	__u64 common; // common_type, common_flags, common_preempt_count, common_pid
	__u32 dev;    // dev_t, the kernel's encoding: major << 20 | minor
	__u32 _pad;
	__u64 sector; // 0 when unset (flushes, passthrough)
	__u32 nr_sector;
	__u32 bytes;
	__u16 ioprio;
	char rwbs[10]; // the operation and flags, as blktrace writes them
};

struct rq_complete_args {
	__u64 common;
	__u32 dev;
	__u32 _pad;
	__u64 sector;    // (u64)-1 when unset, unlike block_rq_issue
	__u32 nr_sector; // the part completed
	__s32 error;     // a negative errno, 0 on success
	__u16 ioprio;
	char rwbs[10];
};

// A watched device's figures. Times are bpf_ktime_get_ns (CLOCK_MONOTONIC).
struct dev_stats {
	__u64 issued;        // requests issued since the watch began
	__u64 completed;     // completions, also of requests issued before
	__u64 errors;        // failed completions
	__u64 inflight;      // requests issued since the watch began and not completed
	__u64 busy_since_ns; // the start of the current period without a completion
	__u64 last_ok_ns;    // the last successful completion, 0 = none
	__u64 last_err_ns;   // the last failed completion, 0 = none
	__u64 fail_run;      // failed completions since the last success
	__u64 fail_since_ns; // the first of them
	__u64 since_ns;      // when the watch began, set by user space
	__s32 last_errno;    // of the last failed completion, positive
	__u32 _pad;
	__u64 hist[HIST_BUCKETS]; // latencies: bucket i holds [2^i, 2^(i+1)) µs
};

// The watched devices, by the tracepoints' dev_t. User space adds and
// removes entries; the programs only update them.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct dev_stats);
} devices SEC(".maps");

// A request in flight on a watched device. The tracepoints do not expose
// the request itself: a request is known by its device, its first sector
// and, for the requests that carry no data, its operation (their sector
// is 0: block_rq_issue and block_rq_complete report an unset sector
// differently).
struct rq_key {
	__u64 sector;
	__u32 dev;
	__u32 op; // 0 for a data request, else the operation's letter in rwbs
};

// The issue time of each request in flight on a watched device. An LRU
// hash, so that completions the programs miss cannot fill it.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct rq_key);
	__type(value, __u64);
} inflight SEC(".maps");

// A failed completion, or the first request in flight on an idle device,
// pushed to wake user space, which decodes it by hand (wakeOf in blkio.go):
// keep the two in step.
struct blk_event {
	__u64 ns;
	__u32 dev;
	__s32 err; // positive errno; 0: the device became busy
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16384);
} wakeups SEC(".maps");

// log2 rounded down; 0 for 0.
static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;

	if (v >= 1ULL << 32) {
		v >>= 32;
		r += 32;
	}
	if (v >= 1 << 16) {
		v >>= 16;
		r += 16;
	}
	if (v >= 1 << 8) {
		v >>= 8;
		r += 8;
	}
	if (v >= 1 << 4) {
		v >>= 4;
		r += 4;
	}
	if (v >= 1 << 2) {
		v >>= 2;
		r += 2;
	}
	if (v >= 1 << 1)
		r += 1;
	return r;
}

// rq_op is the operation's letter of a request's rwbs: 'R', 'W', 'D'
// (discard), 'Z' (zone append), 'F' (flush) or 'N' (no data, such as a
// passthrough command). A leading 'F' is the preflush flag; the letters
// after the operation are flags.
static __always_inline char rq_op(const char *rwbs)
{
	char c0 = rwbs[0], c1 = rwbs[1];

	if (c0 == 'F' && (c1 == 'R' || c1 == 'W' || c1 == 'D' || c1 == 'Z' || c1 == 'F' || c1 == 'N'))
		return c1;
	return c0;
}

// rq_key_of is the in-flight key of a request of dev: its first sector
// when it carries data, else its operation. A data request that completes
// with no data is one whose data completed before (the end of its
// post-flush), or one never issued to the driver (an empty preflush
// write): its key is that of a data-less request, which is rarely in
// flight.
static __always_inline struct rq_key rq_key_of(__u32 dev, const char *rwbs, __u64 sector, __u32 nr_sector)
{
	char op = rq_op(rwbs);
	struct rq_key key = { .dev = dev };

	if ((op == 'R' || op == 'W' || op == 'D' || op == 'Z') && nr_sector > 0)
		key.sector = sector;
	else
		key.op = op;
	return key;
}

SEC("tracepoint/block/block_rq_issue")
int blk_issue(struct rq_issue_args *ctx)
{
	__u32 dev = ctx->dev;
	struct dev_stats *s = bpf_map_lookup_elem(&devices, &dev);
	if (!s)
		return 0;

	__u64 now = bpf_ktime_get_ns();
	struct rq_key key = rq_key_of(dev, ctx->rwbs, ctx->sector, ctx->nr_sector);
	if (bpf_map_update_elem(&inflight, &key, &now, BPF_NOEXIST) != 0) {
		// Already in flight since the watch began: the request is
		// issued again after a requeue, or another request starts at
		// the same sector (two flushes on two hardware queues, say).
		// Either way it is counted once, from the first issue. An
		// older entry was left by a completion missed before the
		// watch began: replace it.
		__u64 *then = bpf_map_lookup_elem(&inflight, &key);
		if (then && *then >= s->since_ns)
			return 0;
		if (bpf_map_update_elem(&inflight, &key, &now, BPF_ANY) != 0)
			return 0;
	}
	__sync_fetch_and_add(&s->issued, 1);
	if (__sync_fetch_and_add(&s->inflight, 1) == 0) {
		s->busy_since_ns = now;
		// User space looks again once this request could be stuck.
		struct blk_event ev = { .ns = now, .dev = dev };
		bpf_ringbuf_output(&wakeups, &ev, sizeof(ev), 0);
	}
	return 0;
}

SEC("tracepoint/block/block_rq_complete")
int blk_complete(struct rq_complete_args *ctx)
{
	__u32 dev = ctx->dev;
	struct dev_stats *s = bpf_map_lookup_elem(&devices, &dev);
	if (!s)
		return 0;

	__u64 now = bpf_ktime_get_ns();
	struct rq_key key = rq_key_of(dev, ctx->rwbs, ctx->sector, ctx->nr_sector);
	__u64 *then = bpf_map_lookup_elem(&inflight, &key);
	if (then) {
		__u64 issued = *then;
		// A request may complete in parts: the first part, which
		// deletes the entry, is the request's completion. Of two
		// CPUs completing at once, only one deletes it.
		if (bpf_map_delete_elem(&inflight, &key) == 0 && issued >= s->since_ns) {
			__sync_fetch_and_sub(&s->inflight, 1);
			__u32 b = log2_u64((now - issued) / 1000);
			if (b >= HIST_BUCKETS)
				b = HIST_BUCKETS - 1;
			__sync_fetch_and_add(&s->hist[b], 1);
		}
	}
	__sync_fetch_and_add(&s->completed, 1);
	// Any completion is progress: the period without one starts again.
	s->busy_since_ns = now;

	if (ctx->error == 0) {
		s->fail_run = 0;
		s->last_ok_ns = now;
		return 0;
	}

	__sync_fetch_and_add(&s->errors, 1);
	if (__sync_fetch_and_add(&s->fail_run, 1) == 0)
		s->fail_since_ns = now;
	s->last_errno = -ctx->error;
	s->last_err_ns = now;

	struct blk_event ev = { .ns = now, .dev = dev, .err = -ctx->error };
	bpf_ringbuf_output(&wakeups, &ev, sizeof(ev), 0);
	return 0;
}

char __license[] SEC("license") = "Dual BSD/GPL";
