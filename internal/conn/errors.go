package conn

import (
	"errors"
	"fmt"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
)

// Error is a broker policy or protocol error found above the codec (a
// second CONNECT, a full queue, a limit), with the MQTT reason code it is
// answered with. Match it with errors.As. The wire response for any error
// is made in one place, client.closeWith.
type Error struct {
	Code codec.ReasonCode
	Msg  string

	// detail says, in the log only, what Msg (an MQTT 5 client may read it
	// in a Reason String) keeps to itself: the topic, the authenticator's
	// own error. of is the error it details (because).
	detail string
	of     *Error
}

func (e *Error) Error() string { return "broker: " + e.Msg }

// Is reports whether e details target (because): errors.Is(e, errWillDenied).
func (e *Error) Is(target error) bool { return e.of != nil && e.of == target }

// because returns e with a detail for the log (Error.detail). It
// allocates: call it where the connection is refused or closed, never
// per message.
func (e *Error) because(format string, args ...any) *Error {
	return &Error{Code: e.Code, Msg: e.Msg, detail: fmt.Sprintf(format, args...), of: e}
}

// describe gives the reason code and the reason string of an error a
// connection is closed with: a *Error of this package, a *codec.Error (a
// malformed packet) or an *eventloop.Error (the reactor's); anything else
// is Unspecified Error, with no reason string.
func describe(err error) (codec.ReasonCode, string) {
	var be *Error
	var ce *codec.Error
	var ee *eventloop.Error
	switch {
	case errors.As(err, &be):
		return be.Code, be.Msg
	case errors.As(err, &ce):
		return ce.Code, ce.Msg
	case errors.As(err, &ee):
		return ee.Code, ee.Msg
	}
	return codec.UnspecifiedError, ""
}

// codeOf is err's reason code (describe).
func codeOf(err error) codec.ReasonCode {
	code, _ := describe(err)
	return code
}
