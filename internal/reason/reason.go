package reason

import (
	"errors"
	"fmt"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
)

// Error is a broker policy or protocol error found above the codec (a
// second CONNECT, a full queue, a limit), with the MQTT reason code it is
// answered with. Match it with errors.As. The wire response for any error
// is made in one place, package conn's client.closeWith.
type Error struct {
	Code codec.ReasonCode
	Msg  string

	// Detail says, in the log only, what Msg (an MQTT 5 client may read it
	// in a Reason String) keeps to itself: the topic, the authenticator's
	// own error.
	Detail string
	of     *Error // the error it details (Because)
}

func (e *Error) Error() string { return "broker: " + e.Msg }

// Is reports whether e details target (Because): errors.Is(e, errWillDenied).
func (e *Error) Is(target error) bool { return e.of != nil && e.of == target }

// Because returns e with a detail for the log (Error.Detail). It
// allocates: call it where the connection is refused or closed, never
// per message.
func (e *Error) Because(format string, args ...any) *Error {
	return &Error{Code: e.Code, Msg: e.Msg, Detail: fmt.Sprintf(format, args...), of: e}
}

// Describe gives the reason code and the reason string of an error a
// connection is closed with: a *Error of this package, a *codec.Error (a
// malformed packet) or an *eventloop.Error (the reactor's); anything else
// is Unspecified Error, with no reason string.
func Describe(err error) (codec.ReasonCode, string) {
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

// Code is err's reason code (Describe).
func Code(err error) codec.ReasonCode {
	code, _ := Describe(err)
	return code
}

// clipLen bounds what a client chose that a detail or a log line repeats
// — its client id, its user name, a topic — so that a refused client
// cannot write lines of 64 KiB: longer ones keep their first clipLen
// bytes and say their length (Clip).
const clipLen = 256

// Clip is s as a detail or a log line may quote it: at most clipLen bytes
// and its length.
func Clip(s string) string {
	if len(s) <= clipLen {
		return s
	}
	return fmt.Sprintf("%s... (%d bytes)", s[:clipLen], len(s))
}
