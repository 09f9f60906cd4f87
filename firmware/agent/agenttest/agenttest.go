// Package agenttest holds a test double of the agent's environment: an Env
// that writes down every call and does none of it, on a clock the test
// sets.
//
//	env := &agenttest.Recorder{Clock: 5 * time.Second}
//	a := agent.New(node, env)
//	a.Handle(cluster.Tick{})
//	// env.Calls: "send link=0", "read ds=0", ...
package agenttest

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/fence/cluster"
	"github.com/vigil-ha/vigil/firmware/agent"
	"github.com/vigil-ha/vigil/hb"
)

// Recorder is an agent.Env that records each call as one line.
type Recorder struct {
	Clock time.Duration // what Now returns
	Calls []string
}

var _ agent.Env = (*Recorder)(nil)

func (r *Recorder) Now() time.Duration                    { return r.Clock }
func (r *Recorder) Send(m *hb.Message)                    { r.add("send link=%d", m.Link) }
func (r *Recorder) WriteSlot(ds int, _ *cluster.Record)   { r.add("write ds=%d", ds) }
func (r *Recorder) ReadSlots(ds int)                      { r.add("read ds=%d", ds) }
func (r *Recorder) ProbeGateway(link int)                 { r.add("probe link=%d", link) }
func (r *Recorder) PetWatchdog(t time.Duration)           { r.add("pet %s", t) }
func (r *Recorder) BMC(h int, op cluster.BMCOp)           { r.add("bmc host=%d op=%d", h, op) }
func (r *Recorder) VM(v int, op cluster.VMOp, seq uint64) { r.add("vm %d op=%d seq=%d", v, op, seq) }
func (r *Recorder) Log(_ slog.Level, c, msg string)       { r.add("log %s: %s", c, msg) }
func (r *Recorder) Assigned(a cluster.Assigned)           { r.add("assigned vm=%d", a.VM) }
func (r *Recorder) RecordIncident(x *cluster.Incident) {
	r.add("incident %d-%d-%d v%d host=%d closed=%v", x.ID.Host, x.ID.Incarnation, x.ID.Seq, x.Version, x.Host, x.Closed)
}

func (r *Recorder) add(format string, args ...any) {
	r.Calls = append(r.Calls, strings.TrimSpace(fmt.Sprintf(format, args...)))
}
