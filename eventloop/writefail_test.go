package eventloop_test

import (
	"testing"
	"time"

	"github.com/shoalmq/shoal/codec"
	"github.com/shoalmq/shoal/eventloop"
)

// TestWriteToResetConnection: a write that fails because the client reset
// the connection makes gnet close it at once, inside the write (OnClose
// runs there and drops the output buffer). Close and the end-of-event
// flush must cope with the connection gone under them: both dereferenced
// the dropped buffer (a broker crash under TestAbuseSubscriberNeverReads).
func TestWriteToResetConnection(t *testing.T) {
	for _, how := range []string{"Close", "flush"} {
		t.Run(how, func(t *testing.T) {
			r := newRecorder()
			r.onFrame = func(c *eventloop.Conn, h codec.Header, _ []byte) error {
				time.Sleep(100 * time.Millisecond) // the reset arrives meanwhile
				c.Write(pingresp)
				if how == "Close" {
					c.Close()
				}
				return nil
			}
			e := start(t, r)
			nc, a := dial(t, e, r)
			send(t, nc, pingreq)
			_ = nc.SetLinger(0) // close with a reset
			_ = nc.Close()
			r.waitFor(t, "OnClose", func() bool { return r.closes[a] == 1 })
		})
	}
}
