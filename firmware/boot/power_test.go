//go:build linux

package boot

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func inputEvent(typ, code uint16, value int32) []byte {
	b := make([]byte, inputEventSize)
	binary.NativeEndian.PutUint16(b[16:], typ)
	binary.NativeEndian.PutUint16(b[18:], code)
	binary.NativeEndian.PutUint32(b[20:], uint32(value))
	return b
}

func TestPowerPressed(t *testing.T) {
	var in bytes.Buffer
	in.Write(inputEvent(0, 0, 0))            // a sync report
	in.Write(inputEvent(evKey, 30, 1))       // the A key
	in.Write(inputEvent(evKey, keyPower, 0)) // the power key released
	if powerPressed(bytes.NewReader(in.Bytes())) {
		t.Fatal("pressed without a power key press")
	}
	in.Write(inputEvent(evKey, keyPower, 1))
	if !powerPressed(bytes.NewReader(in.Bytes())) {
		t.Fatal("the power key press was not seen")
	}
	if powerPressed(bytes.NewReader(inputEvent(evKey, keyPower, 1)[:10])) {
		t.Fatal("a short read counted")
	}
}
