package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/tools/lab/dsfault"
)

// The supervisor's control protocol: one JSON object a line each way on
// supervisor.sock, an answer per request, in order.
//
//	{"op":"disarm","host":"h1"}  -> {"ok":true}
//	{"op":"state","host":"h1"}   -> {"ok":true,"armed":true,"timeout_ns":4000000000,"left_ns":3100000000}
//	{"op":"ds","host":"h1","ds":"ds1","mode":"fail"} -> {"ok":true}  (ok, fail or hang)
//	{"op":"ping"}                -> {"ok":true}
//	anything else                -> {"ok":false,"error":"..."}

// ErrNoSupervisor is returned when the supervisor's socket does not
// answer.
var ErrNoSupervisor = errors.New("the lab's supervisor is not running")

// controlWait bounds one exchange with the supervisor.
const controlWait = 5 * time.Second

type ctlRequest struct {
	Op   string `json:"op"`
	Host string `json:"host,omitempty"`
	DS   string `json:"ds,omitempty"`
	Mode string `json:"mode,omitempty"`
}

type ctlResponse struct {
	OK        bool   `json:"ok"`
	Error     string `json:"error,omitempty"`
	Armed     bool   `json:"armed,omitempty"`
	TimeoutNS int64  `json:"timeout_ns,omitempty"`
	LeftNS    int64  `json:"left_ns,omitempty"`
}

// controlCall sends reqs to the supervisor on one connection and returns
// its answers.
func controlCall(sock string, reqs []ctlRequest) ([]ctlResponse, error) {
	conn, err := net.DialTimeout("unix", sock, controlWait)
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return nil, fmt.Errorf("%w: %s does not answer (fix: vigil lab up again)", ErrNoSupervisor, sock)
	}
	if err != nil {
		return nil, fmt.Errorf("lab: reach the supervisor: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(controlWait))
	enc := json.NewEncoder(conn)
	dec := json.NewDecoder(bufio.NewReader(conn))
	out := make([]ctlResponse, 0, len(reqs))
	for _, r := range reqs {
		if err := enc.Encode(r); err != nil {
			return nil, fmt.Errorf("lab: ask the supervisor: %w", err)
		}
		var resp ctlResponse
		if err := dec.Decode(&resp); err != nil {
			return nil, fmt.Errorf("lab: read the supervisor's answer: %w", err)
		}
		out = append(out, resp)
	}
	return out, nil
}

// disarm tells the supervisor that host's watchdog is reset. A supervisor
// that is not running has no watchdog to disarm.
func disarm(sock, host string) error {
	rs, err := controlCall(sock, []ctlRequest{{Op: "disarm", Host: host}})
	if errors.Is(err, ErrNoSupervisor) {
		return nil
	}
	if err != nil {
		return err
	}
	if !rs[0].OK {
		return fmt.Errorf("lab: the supervisor refused to disarm %s: %s", host, rs[0].Error)
	}
	return nil
}

// serveControl answers control connections on ln until ctx ends.
func serveControl(ctx context.Context, ln net.Listener, wd Watchdogs, ds map[string]*dsfault.Faults, hosts []string, logf func(string, ...any)) {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	known := map[string]bool{}
	for _, h := range hosts {
		known[h] = true
	}
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				logf("control: accept: %v", err)
			}
			return
		}
		go func() {
			defer conn.Close()
			sc := bufio.NewScanner(conn)
			enc := json.NewEncoder(conn)
			for sc.Scan() {
				if err := enc.Encode(answer(sc.Bytes(), wd, ds, known)); err != nil {
					return
				}
			}
		}()
	}
}

// answer handles one request line.
func answer(line []byte, wd Watchdogs, ds map[string]*dsfault.Faults, known map[string]bool) ctlResponse {
	var r ctlRequest
	if err := json.Unmarshal(line, &r); err != nil {
		return ctlResponse{Error: fmt.Sprintf("bad request: %v", err)}
	}
	if r.Op == "ping" {
		return ctlResponse{OK: true}
	}
	if !known[r.Host] {
		return ctlResponse{Error: fmt.Sprintf("unknown host %q", r.Host)}
	}
	switch r.Op {
	case "disarm":
		wd.Disarm(r.Host)
		return ctlResponse{OK: true}
	case "state":
		armed, timeout, left := wd.State(r.Host)
		return ctlResponse{OK: true, Armed: armed, TimeoutNS: int64(timeout), LeftNS: int64(left)}
	case "ds":
		m, err := dsfault.ParseMode(r.Mode)
		if err != nil {
			return ctlResponse{Error: err.Error()}
		}
		f := ds[r.Host]
		if f == nil {
			return ctlResponse{Error: fmt.Sprintf("%s has no datastore paths", r.Host)}
		}
		f.Set(r.DS, m)
		return ctlResponse{OK: true}
	}
	return ctlResponse{Error: fmt.Sprintf("unknown op %q: want disarm, state, ds or ping", r.Op)}
}
