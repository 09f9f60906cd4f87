package cluster

import (
	"errors"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/hb"
)

// FuzzStep feeds a node arbitrary event sequences, fields out of range
// included: whatever the shell hands over, the core must not panic.
func FuzzStep(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
	f.Add([]byte{1, 1, 1, 200, 7, 0, 0, 3, 3, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := testSpec(3, 2)
		n := NewNode(Config{Spec: s, Self: int(data0(data)) % 3, Incarnation: 1})
		now := time.Duration(0)
		b := func(i int) int {
			if i < len(data) {
				return int(int8(data[i]))
			}
			return 0
		}
		for i := 0; i+3 < len(data); i += 4 {
			now += time.Duration(data[i+3]) * 10 * time.Millisecond
			x, y := b(i+1), b(i+2)
			var ev Event
			switch data[i] % 13 {
			case 0:
				ev = Tick{}
			case 1:
				ev = Received{Msg: &hb.Message{From: x, Link: y, Incarnation: uint64(x & 3), Version: uint64(y & 3),
					Hears: hb.HostSet(data[i+3]), Coordinator: y,
					Assignments: []hb.Assignment{{VM: x, Host: y, Epoch: uint64(data[i+3]), Inc: uint64(x & 1)}}}}
			case 2:
				ev = LinkChanged{Link: x, Up: y > 0}
			case 3:
				ev = GatewayReplied{Link: x, OK: y > 0}
			case 4:
				var err error
				if y < 0 {
					err = errors.New("EIO")
				}
				ev = SlotWritten{DS: x, Err: err}
			case 5:
				recs := make([]*Record, 3)
				recs[y&3%3] = &Record{Host: x, Incarnation: uint64(y & 3), Counter: uint64(data[i+3]),
					Claims: []Claim{{VM: x, Epoch: uint64(y & 7), State: ClaimState(data[i+3] % 5)}}}
				ev = SlotsRead{DS: x, Records: recs}
			case 6:
				ev = BMCReplied{Host: x, Op: BMCOp(y & 3), On: y > 0}
			case 7:
				ev = VMDone{VM: x, Op: VMOp(y & 3)}
			case 8:
				ev = VMExited{VM: x}
			case 9:
				ev = LocalHealth{Delay: time.Duration(y) * 50 * time.Millisecond, Read: int(data[i+3] & 1),
					Kernel: []KernelSeen{{Host: x, Link: y, At: now - time.Duration(x)*time.Millisecond, Unread: uint64(data[i+3])}}}
			case 10:
				ev = StoreIO{DS: x, Down: y > 0, Why: "stuck"}
			case 11:
				ev = VMFailover{VM: x, Why: "fuzz"}
			default:
				ev = Command{Name: []string{"maintenance-enter", "maintenance-exit", "x"}[uint(y)%3]}
			}
			n.Step(now, ev)
		}
	})
}

func data0(d []byte) byte {
	if len(d) == 0 {
		return 0
	}
	return d[0]
}
