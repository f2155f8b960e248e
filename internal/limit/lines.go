package limit

// Lines is a rate limit on log lines of one kind, so that a storm (of
// reconnects, say) cannot flood the log: a burst of Burst lines, then Rate
// a second. What it holds back is counted, for one line that says how
// many (Held). The zero value of the bucket is full on first use. One
// goroutine uses it.
type Lines struct {
	Rate  float64 // lines per second
	Burst int

	b    Bucket
	held int
}

// Allow reports whether a line may be written at now (Unix ns), counting
// it as held back when not.
func (l *Lines) Allow(now int64) bool {
	if l.b.Take(now, l.Rate, l.Burst) {
		return true
	}
	l.held++
	return false
}

// Held returns how many lines were held back since it was last called.
func (l *Lines) Held() int {
	n := l.held
	l.held = 0
	return n
}
