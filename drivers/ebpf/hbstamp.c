//go:build ignore

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// hbstamp: a TCX ingress program that counts, per (device, source address),
// the vigil heartbeats that reach the kernel and stamps the last one's
// arrival. A heartbeat is a UDP datagram to hb_port whose payload starts
// with "VGL", over IPv4 or IPv6 (no extension headers), optionally behind
// one 802.1Q tag. The program only reads: every packet goes on to the next
// program and the stack.
//
// Built by bpf2go (see stamp.go), with the system's UAPI and libbpf headers.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <asm-generic/errno-base.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// TCX_NEXT (linux/bpf.h since 6.6) has the value of TC_ACT_UNSPEC: let the
// next program and then the stack have the packet.
#define HB_NEXT TC_ACT_UNSPEC

#define HB_MAGIC_LEN 3
#define IP_OFFSET 0x1fff // the fragment offset in iphdr.frag_off

// The heartbeat port, set at load time through the collection's Variables.
volatile const __u16 hb_port = 5405;

struct vlan_tag {
	__be16 tci;
	__be16 proto;
};

// A source: the device and the sender's address, IPv4 as IPv4-mapped IPv6.
struct stamp_key {
	__u32 ifindex;
	__u8 addr[16];
};

struct stamp_val {
	__u64 count;   // heartbeats seen
	__u64 last_ns; // bpf_ktime_get_ns of the last one (CLOCK_MONOTONIC)
};

// An LRU hash, so that forged sources evict each other rather than fill it.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct stamp_key);
	__type(value, struct stamp_val);
} stamps SEC(".maps");

// peek returns len bytes of the packet at off: in place when they lie in
// the linear data, else copied into buf (non-linear packets, whose payload
// some drivers keep in page fragments). NULL when the packet is shorter.
static __always_inline void *peek(struct __sk_buff *skb, __u32 off, __u32 len, void *buf)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;

	if (data + off + len <= end)
		return data + off;
	if (bpf_skb_load_bytes(skb, off, buf, len) < 0)
		return NULL;
	return buf;
}

SEC("tc")
int hb_stamp(struct __sk_buff *skb)
{
	union {
		struct ethhdr eth;
		struct iphdr ip4;
		struct ipv6hdr ip6;
		__u8 udp[sizeof(struct udphdr) + HB_MAGIC_LEN];
	} buf;
	struct stamp_key key = {};
	__u32 off = sizeof(struct ethhdr);

	struct ethhdr *eth = peek(skb, 0, sizeof(*eth), &buf);
	if (!eth)
		return HB_NEXT;
	__be16 type = eth->h_proto;
	if (type == bpf_htons(ETH_P_8021Q)) {
		struct vlan_tag *tag = peek(skb, off, sizeof(*tag), &buf);
		if (!tag)
			return HB_NEXT;
		type = tag->proto;
		off += sizeof(*tag);
	}

	if (type == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = peek(skb, off, sizeof(*ip), &buf);
		if (!ip || ip->ihl < 5 || ip->protocol != IPPROTO_UDP)
			return HB_NEXT;
		// Later fragments carry no UDP header.
		if (ip->frag_off & bpf_htons(IP_OFFSET))
			return HB_NEXT;
		key.addr[10] = 0xff;
		key.addr[11] = 0xff;
		__builtin_memcpy(&key.addr[12], &ip->saddr, 4);
		off += ip->ihl * 4;
	} else if (type == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = peek(skb, off, sizeof(*ip6), &buf);
		if (!ip6 || ip6->nexthdr != IPPROTO_UDP)
			return HB_NEXT;
		__builtin_memcpy(key.addr, &ip6->saddr, 16);
		off += sizeof(*ip6);
	} else {
		return HB_NEXT;
	}

	__u8 *udp = peek(skb, off, sizeof(buf.udp), &buf);
	if (!udp)
		return HB_NEXT;
	struct udphdr *uh = (void *)udp;
	__u8 *magic = udp + sizeof(struct udphdr);
	// The length check keeps Ethernet padding out of the magic.
	if (uh->dest != bpf_htons(hb_port) ||
	    bpf_ntohs(uh->len) < sizeof(struct udphdr) + HB_MAGIC_LEN || magic[0] != 'V' ||
	    magic[1] != 'G' || magic[2] != 'L')
		return HB_NEXT;

	key.ifindex = skb->ifindex;
	__u64 now = bpf_ktime_get_ns();
	struct stamp_val *v = bpf_map_lookup_elem(&stamps, &key);
	if (!v) {
		struct stamp_val fresh = { .count = 1, .last_ns = now };
		if (bpf_map_update_elem(&stamps, &key, &fresh, BPF_NOEXIST) != -EEXIST)
			return HB_NEXT;
		// Another CPU inserted it first: add to its entry.
		v = bpf_map_lookup_elem(&stamps, &key);
		if (!v)
			return HB_NEXT;
	}
	__sync_fetch_and_add(&v->count, 1);
	// Two CPUs may store out of order: last_ns is then a few ns early.
	v->last_ns = now;
	return HB_NEXT;
}

char __license[] SEC("license") = "Dual BSD/GPL";
