//go:build !vigil_noipmilan

package ipmi

import (
	"crypto/hmac"
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/bougou/go-ipmi/pkg/crypto"
	"github.com/bougou/go-ipmi/pkg/types"
)

// integrity checks the integrity code of the BMC's answers in a session.
// go-ipmi (v0.9.1) decrypts answers but does not check their code, and
// AES-CBC alone does not protect them: flipping bits of a captured
// answer's IV flips the same bits of its first block, where Get Chassis
// Status carries the power state. Without this check anyone on the BMC's
// network could turn a read-back "on" into "off", the fence proof.
//
// The checker sits on go-ipmi's socket. It reads the session setup on the
// wire (the console's random number, role and user name in RAKP 1, the
// BMC's random number in RAKP 2), derives the session integrity key K1 as
// both ends do, and from then on drops every answer whose integrity code
// is missing or wrong: a forged answer becomes a lost one.
type integrity struct {
	auth     types.AuthAlg
	alg      types.IntegrityAlg
	password string // the key (Kuid): BMC keys (Kg) are not supported

	mu          sync.Mutex
	consoleRand []byte
	role        uint8
	user        string
	k1          []byte
	dropped     atomic.Int64
}

func newIntegrity(suite int, password string) *integrity {
	auth, alg, _, _ := types.GetCipherSuiteAlgorithms(types.CipherSuiteID(suite))
	return &integrity{auth: auth, alg: alg, password: password}
}

// RMCP+ packet layout (IPMI 2.0 section 13.6): the RMCP header, then the
// session header from the auth type on, then the payload.
const (
	rmcpHeaderLen   = 4
	sessionHeadLen  = 12 // auth type, payload type, session ID, sequence, length
	payloadOffset   = rmcpHeaderLen + sessionHeadLen
	payloadRAKP1    = 0x12
	payloadRAKP2    = 0x13
	flagAuthentic   = 0x40
	payloadTypeMask = 0x3f
)

// payload returns an RMCP+ packet's payload type, flags and payload.
func rmcpPlus(p []byte) (typ, flags byte, payload []byte, ok bool) {
	if len(p) < payloadOffset || p[rmcpHeaderLen] != byte(types.AuthTypeRMCPPlus) {
		return 0, 0, nil, false
	}
	typ, flags = p[5]&payloadTypeMask, p[5]&^payloadTypeMask
	n := int(binary.LittleEndian.Uint16(p[14:16]))
	if typ == byte(types.PayloadTypeOEM) || len(p) < payloadOffset+n {
		return 0, 0, nil, false
	}
	return typ, flags, p[payloadOffset : payloadOffset+n], true
}

// outbound notes RAKP 1's random number, role and user name.
func (v *integrity) outbound(p []byte) {
	typ, _, pl, ok := rmcpPlus(p)
	if !ok || typ != payloadRAKP1 || len(pl) < 28 || len(pl) < 28+int(pl[27]) {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.consoleRand = append([]byte(nil), pl[8:24]...)
	v.role = pl[24]
	v.user = string(pl[28 : 28+int(pl[27])])
	v.k1 = nil
}

// inbound reports whether the datagram p may be read: session setup
// passes (go-ipmi checks RAKP 2 and 4 itself), and RAKP 2 gives the key;
// once the key is known, an answer passes only with its right code.
func (v *integrity) inbound(p []byte) bool {
	typ, flags, pl, ok := rmcpPlus(p)
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case !ok:
		return v.k1 == nil // IPMI 1.5 or broken: only before the session
	case typ >= byte(types.PayloadTypeRmcpOpenSessionRequest) && typ <= payloadRAKP2+2:
		if typ == payloadRAKP2 && len(pl) >= 24 && pl[1] == 0 && v.consoleRand != nil {
			pad := crypto.PadPassword20([]byte(v.password))
			_, k1, _, err := crypto.DeriveSessionKeys(v.auth, v.consoleRand, pl[8:24], v.role, v.user, pad)
			if err == nil {
				v.k1 = k1
			}
		}
		return true
	case v.k1 == nil:
		return true // no session yet: nothing to check against
	case flags&flagAuthentic == 0:
		return false
	}
	n, ok := crypto.IntegrityAuthCodeLen(v.alg)
	if !ok || len(p) < payloadOffset+n {
		return false
	}
	want, err := crypto.SessionIntegrityAuthCode(v.alg, p[rmcpHeaderLen:len(p)-n], v.k1, "")
	return err == nil && hmac.Equal(want, p[len(p)-n:])
}
