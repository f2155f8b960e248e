package reason

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
)

// TestErrorsNameTheirPackage: an error says which package found it — a
// broker policy error reads "broker: ...", the reactor's "eventloop: ...",
// a malformed packet "codec: ..." — and each carries its reason code,
// found with errors.As through wrapping (Describe, behind the one place that
// turns errors into wire answers). Broker errors used to be *codec.Error
// and logged as "codec: client takes messages slower than they come".
func TestErrorsNameTheirPackage(t *testing.T) {
	slow := &Error{Code: codec.QuotaExceeded, Msg: "client takes messages slower than they come: its queue is full"}
	receiveMax := &Error{Code: codec.ReceiveMaximumExceeded, Msg: "too many QoS 2 messages awaiting PUBREL"}
	for _, tc := range []struct {
		err    error
		prefix string
		code   codec.ReasonCode
		reason string
	}{
		{slow, "broker: ", codec.QuotaExceeded, slow.Msg},
		{slow.Because("max_queued %d", 10), "broker: ", codec.QuotaExceeded, slow.Msg},
		{receiveMax, "broker: ", codec.ReceiveMaximumExceeded, receiveMax.Msg},
		{eventloop.ErrInputBacklog, "eventloop: ", codec.QuotaExceeded, "too much input while paused"},
		{codec.ErrTruncated, "codec: ", codec.MalformedPacket, "packet shorter than its fields"},
		{errors.New("an authenticator's own"), "", codec.UnspecifiedError, ""},
	} {
		if tc.prefix != "" && !strings.HasPrefix(tc.err.Error(), tc.prefix) {
			t.Errorf("%q: want the prefix %q", tc.err, tc.prefix)
		}
		wrapped := fmt.Errorf("closing: %w", tc.err)
		if code, reason := Describe(wrapped); code != tc.code || reason != tc.reason {
			t.Errorf("Describe(%q) = %v, %q; want %v, %q", wrapped, code, reason, tc.code, tc.reason)
		}
	}
	var be *Error
	if errors.As(eventloop.ErrInputBacklog, &be) {
		t.Error("eventloop's error matched the broker's type")
	}
}
