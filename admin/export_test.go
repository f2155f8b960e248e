package admin

import "time"

// SetHistoryTicks makes s sample its history at each time received from
// ticks, and only then, instead of every historyInterval from Start: a test
// fills the history with samples minutes apart without waiting. Call it
// before Start.
func (s *Server) SetHistoryTicks(ticks <-chan time.Time) { s.ticks = ticks }
