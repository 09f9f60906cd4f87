// Package deps pins modules while the packages that use them are written.
package deps

import (
	_ "github.com/cilium/ebpf"
	_ "github.com/mdlayher/watchdog"
	_ "github.com/vishvananda/netlink"
	_ "github.com/vishvananda/netns"
	_ "golang.org/x/net/icmp"
	_ "golang.org/x/sys/unix"
)
