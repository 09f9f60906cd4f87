//go:build !vigil_noipmilan

package ipmi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/bougou/go-ipmi/pkg/command/app"
	"github.com/bougou/go-ipmi/pkg/types"
)

// CheckCipherSuite says whether DialLAN accepts cipher suite id: it must
// authenticate, check integrity and encrypt with AES (3, 8, 12 or 17).
// Without them anyone on the BMC's network could forge a power state
// read-back, or read the session.
func CheckCipherSuite(id int) error { return checkSuite(id) }

func checkSuite(id int) error {
	if id < 0 || id > 0xff {
		return fmt.Errorf("cipher suite %d does not exist: use 17 or 3", id)
	}
	auth, integ, crypt, ok := types.GetCipherSuiteAlgorithms(types.CipherSuiteID(id))
	if !ok {
		return fmt.Errorf("cipher suite %d is not a standard suite this client implements: use 17 or 3", id)
	}
	var missing []string
	if auth == types.AuthAlg_None {
		missing = append(missing, "authentication")
	}
	if integ == types.IntegrityAlg_None {
		missing = append(missing, "integrity check")
	}
	switch crypt {
	case types.CryptAlg_AES_CBC_128:
	case types.CryptAlg_None:
		missing = append(missing, "encryption")
	default:
		missing = append(missing, "AES encryption (its RC4 is broken)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("cipher suite %d has no %s, so a power state read from it proves nothing: use 17 or 3", id, strings.Join(missing, ", no "))
	}
	return nil
}

// resolveSuites checks the suites asked for, or returns the defaults.
func resolveSuites(ids []int) ([]int, error) {
	if len(ids) == 0 {
		return DefaultCipherSuites, nil
	}
	var out []int
	for _, id := range ids {
		if err := checkSuite(id); err != nil {
			return nil, err
		}
		dup := false
		for _, o := range out {
			dup = dup || o == id
		}
		if !dup {
			out = append(out, id)
		}
	}
	return out, nil
}

// pickSuites keeps the suites of want that the BMC offers, in want's order.
func pickSuites(want, offered []int) []int {
	var out []int
	for _, w := range want {
		for _, o := range offered {
			if w == o {
				out = append(out, w)
				break
			}
		}
	}
	return out
}

// errNoAnswer is a pre-session query that got no answer at all.
var errNoAnswer = errors.New("no answer")

// querySuites asks the BMC which cipher suites its LAN channel offers (Get
// Channel Cipher Suites, which IPMI allows before a session), so that
// session setup tries only suites the BMC has instead of waiting for
// refusals. Each request goes out in both framings a BMC may expect
// outside a session, IPMI 1.5 (which ipmi_sim needs) and RMCP+ (which
// ipmitool uses), and the first answer wins. An error wrapping
// errNoAnswer means nothing came back in attempts x timeout.
func querySuites(ctx context.Context, conn net.Conn, timeout time.Duration, attempts int) ([]int, error) {
	var records []byte
	for index := uint8(0); index <= app.MaxCipherSuiteListIndex; index++ {
		page, err := askSuites(ctx, conn, index, timeout, attempts)
		if err != nil {
			return nil, err
		}
		records = append(records, page...)
		if len(page) < 16 {
			break
		}
	}
	recs, err := app.ParseCipherSuitesData(records)
	if err != nil {
		return nil, fmt.Errorf("Get Channel Cipher Suites: %w", err)
	}
	ids := make([]int, 0, len(recs))
	for _, r := range recs {
		ids = append(ids, int(r.CipherSuitID))
	}
	return ids, nil
}

// askSuites gets one page (list index) of cipher suite records.
func askSuites(ctx context.Context, conn net.Conn, index uint8, timeout time.Duration, attempts int) ([]byte, error) {
	req := &app.GetChannelCipherSuitesRequest{ChannelNumber: types.ChannelNumberSelf, PayloadType: types.PayloadTypeIPMI, ListIndex: index}
	seq := index%types.IPMIRequesterSequenceMax + 1
	msg := &types.IPMIRequest{
		ResponderAddr: types.BMC_SA, NetFn: req.Command().NetFn, RequesterAddr: types.RemoteConsole_SWID,
		RequesterSequence: seq, Command: req.Command().ID, CommandData: req.Pack(),
	}
	msg.ComputeChecksum()
	payload := msg.Pack()
	v15 := (&types.Rmcp{RmcpHeader: types.NewRmcpHeader(), Session15: &types.Session15{
		SessionHeader15: &types.SessionHeader15{AuthType: types.AuthTypeNone, PayloadLength: uint8(len(payload))}, Payload: payload,
	}}).Pack()
	v20 := (&types.Rmcp{RmcpHeader: types.NewRmcpHeader(), Session20: &types.Session20{
		SessionHeader20: &types.SessionHeader20{AuthType: types.AuthTypeRMCPPlus, PayloadType: types.PayloadTypeIPMI, PayloadLength: uint16(len(payload))},
		SessionPayload:  payload,
	}}).Pack()

	buf := make([]byte, 1024)
	for attempt := 0; attempt < attempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for _, p := range [][]byte{v15, v20} {
			if _, err := conn.Write(p); err != nil {
				// An ICMP error from the previous datagram: nobody there.
				return nil, fmt.Errorf("Get Channel Cipher Suites: %w: %w", errNoAnswer, err)
			}
		}
		deadline := time.Now().Add(timeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		if err := conn.SetReadDeadline(deadline); err != nil {
			return nil, err
		}
		for {
			n, err := conn.Read(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				// ICMP port unreachable and the like: nobody answers there.
				return nil, fmt.Errorf("Get Channel Cipher Suites: %w: %w", errNoAnswer, err)
			}
			res, ok := suitesAnswer(buf[:n], seq)
			if !ok {
				continue
			}
			if res.CompletionCode != 0 {
				return nil, newCompletionError(types.CommandGetChannelCipherSuites, res.CompletionCode)
			}
			var page app.GetChannelCipherSuitesResponse
			if err := page.Unpack(res.Data); err != nil {
				return nil, fmt.Errorf("Get Channel Cipher Suites: %w", err)
			}
			return page.CipherSuiteRecords, nil
		}
	}
	return nil, fmt.Errorf("Get Channel Cipher Suites: %w in %d attempt(s) of %v", errNoAnswer, attempts, timeout)
}

// suitesAnswer decodes p as the answer to Get Channel Cipher Suites with
// sequence number seq, in either framing.
func suitesAnswer(p []byte, seq uint8) (*types.IPMIResponse, bool) {
	var r types.Rmcp
	if err := r.Unpack(p); err != nil {
		return nil, false
	}
	var payload []byte
	switch {
	case r.Session15 != nil:
		payload = r.Session15.Payload
	case r.Session20 != nil && r.Session20.SessionHeader20.PayloadType == types.PayloadTypeIPMI && !r.Session20.SessionHeader20.PayloadEncrypted:
		payload = r.Session20.SessionPayload
	default:
		return nil, false
	}
	var res types.IPMIResponse
	if err := res.Unpack(payload); err != nil {
		return nil, false
	}
	if res.Command != types.CommandGetChannelCipherSuites.ID || res.RequesterSequence != seq {
		return nil, false
	}
	return &res, true
}
