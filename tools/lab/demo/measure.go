package demo

import (
	"strings"
	"time"
)

// Recovery is what one host failure cost, read from the survivors' logs.
type Recovery struct {
	Detect    time.Duration // failure to the first survivor's suspicion
	Fence     time.Duration // detection to the fence proof
	Recover   time.Duration // failure to the last of the host's VMs running again
	Method    string        // the proof's kind
	Recovered int           // of the host's VMs, those running again elsewhere
	Lost      int           // the host's VMs
	Detected  bool
	Proven    bool
}

// Measure reads the recovery of host, which failed at failed and ran the
// VMs lost, from the merged logs of every host.
func Measure(lines []Line, host string, failed time.Time, lost []string) Recovery {
	r := Recovery{Lost: len(lost), Method: "none"}
	var detectAt, proofAt, last time.Time
	isLost := map[string]bool{}
	for _, v := range lost {
		isLost[v] = false
	}
	for _, l := range lines {
		if l.Host == host || l.Time.Before(failed) {
			continue
		}
		switch {
		case !r.Detected && l.Component == "hb" && strings.HasPrefix(l.Msg, host+" silent on all links"),
			!r.Detected && l.Component == "verdict" && strings.HasPrefix(l.Msg, host+": alive -> "):
			r.Detected, detectAt = true, l.Time
		case !r.Proven && l.Component == "assign" && l.Attrs["from"] == host:
			if p, ok := l.Attrs["proof"].(string); ok {
				r.Proven, r.Method = true, p
				proofAt = l.Time
			}
		case l.Component == "vm" && strings.HasSuffix(l.Msg, " running"):
			vm := strings.TrimSuffix(l.Msg, " running")
			if done, ok := isLost[vm]; ok && !done {
				isLost[vm] = true
				r.Recovered++
				last = l.Time
			}
		}
	}
	if r.Detected {
		r.Detect = detectAt.Sub(failed)
		if r.Proven {
			r.Fence = max(proofAt.Sub(detectAt), 0)
		}
	}
	if r.Recovered > 0 {
		r.Recover = last.Sub(failed)
	}
	return r
}
