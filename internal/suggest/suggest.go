package suggest

import "strings"

// Closest returns the known name closest to an unknown one, or "" when
// none is close enough to be a likely typo. Safe for concurrent use.
func Closest(unknown string, known []string) string {
	norm := func(s string) string {
		s = strings.ToLower(s)
		return strings.NewReplacer("_", "", "-", "", " ", "").Replace(s)
	}
	// Same letters in another case or with other separators
	// ("maxInflight", "max-inflight") is surely the name that was meant.
	for _, k := range known {
		if norm(k) == norm(unknown) {
			return k
		}
	}
	best, bestDist := "", 0
	for _, k := range known {
		d := editDistance(strings.ToLower(unknown), k)
		if best == "" || d < bestDist {
			best, bestDist = k, d
		}
	}
	// Allow about one edit per three letters: "listne" (2 edits from
	// "listen") is a typo, "port" (4 from "loops") is a different idea.
	if bestDist <= max(1, len(best)/3) {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b, counted in
// bytes (names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
