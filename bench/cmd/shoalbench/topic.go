package main

import (
	"strconv"
	"strings"
)

// expandTopic fills in a topic template as emqtt-bench does: %i is the
// client's sequence number, %c its client identifier, %u its user name and
// %% a literal percent sign. Any other %x is kept as it is.
func expandTopic(tmpl string, seq int, clientID, username string) string {
	if strings.IndexByte(tmpl, '%') < 0 {
		return tmpl
	}
	var b strings.Builder
	b.Grow(len(tmpl) + len(clientID))
	for i := 0; i < len(tmpl); i++ {
		ch := tmpl[i]
		if ch != '%' || i+1 == len(tmpl) {
			b.WriteByte(ch)
			continue
		}
		switch tmpl[i+1] {
		case 'i':
			b.WriteString(strconv.Itoa(seq))
		case 'c':
			b.WriteString(clientID)
		case 'u':
			b.WriteString(username)
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			continue
		}
		i++
	}
	return b.String()
}
