//go:build !vigil_noipmilan

package ipmi

import (
	"context"
	"errors"
	"syscall"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
)

// classify turns an error of the go-ipmi client into this package's
// errors. answered tells whether any datagram came back from the BMC during
// the failed exchange: none at all means the BMC is unreachable, whatever
// the client called it.
func classify(err error, answered bool, waited string) error {
	var re *types.ResponseError
	var se *types.RmcpStatusError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re) && re.CompletionCode() != types.CodeOK:
		// go-ipmi's ResponseError does not name its command: the caller
		// knows it and rebuilds the error with newCompletionError.
		return err
	case errors.As(err, &se):
		c := uint8(se.StatusCode())
		return &StatusError{Code: c, Text: se.StatusCode().String()}
	case errors.Is(err, client.ErrRAKPAuthentication):
		return &causeError{kind: ErrAuth, msg: "its key-exchange answer does not match this user's password", err: err}
	case !answered:
		if errors.Is(err, context.Canceled) {
			return err
		}
		msg := "no answer " + waited
		if errors.Is(err, context.DeadlineExceeded) {
			msg = "no answer before the deadline"
		}
		var errno syscall.Errno
		if errors.As(err, &errno) {
			msg += " (" + errno.Error() + ")"
		}
		return &causeError{kind: ErrUnreachable, msg: msg, err: err}
	}
	return err
}

// completion rebuilds a go-ipmi ResponseError as a *CompletionError of cmd.
func completion(cmd types.Command, err error) error {
	var re *types.ResponseError
	if errors.As(err, &re) && re.CompletionCode() != types.CodeOK {
		return newCompletionError(cmd, uint8(re.CompletionCode()))
	}
	return err
}
