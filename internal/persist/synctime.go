package persist

import "github.com/shoalmq/shoal/internal/counters"

// How long the store takes to sync — the fsync an acknowledgement waits
// for under strict durability — kept as a histogram per loop (and one for
// the relaxed once-a-second sync), summed by the broker's Stats. Observing
// costs two clock reads and two atomic adds per syncing commit, which
// itself costs a disk sync; nothing is timed on commits that do not sync.

// SyncHistogram counts store syncs by duration (counters.Durations: from
// 100 µs to 2.5 s). One goroutine observes; Read is safe at any time.
type SyncHistogram = counters.Durations
