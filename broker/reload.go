package broker

import (
	"reflect"
	"time"

	"github.com/rs/zerolog"
)

// Limits are the settings a running broker can change (Reload): each is
// read afresh when it applies, so a new value holds for what comes after —
// a new connection's keep-alive cap and window, a message queued from now
// on — and what was decided stays.
type Limits struct {
	ConnectTimeout   time.Duration
	MaxKeepAlive     uint16
	MaxInflight      int
	MaxQueued        int
	QueuePolicy      QueuePolicy
	SlowConsumer     SlowConsumerPolicy
	RetryInterval    time.Duration
	MaxSessionExpiry time.Duration
}

// limits returns c's Limits.
func (c *Config) limits() *Limits {
	return &Limits{
		ConnectTimeout:   c.ConnectTimeout,
		MaxKeepAlive:     c.MaxKeepAlive,
		MaxInflight:      c.MaxInflight,
		MaxQueued:        c.MaxQueued,
		QueuePolicy:      c.QueuePolicy,
		SlowConsumer:     c.SlowConsumer,
		RetryInterval:    c.RetryInterval,
		MaxSessionExpiry: c.MaxSessionExpiry,
	}
}

// reloadable are the Config fields Reload applies: the Limits, and the
// Logger (its level).
var reloadable = map[string]bool{
	"ConnectTimeout": true, "MaxKeepAlive": true, "MaxInflight": true, "MaxQueued": true,
	"QueuePolicy": true, "SlowConsumer": true, "RetryInterval": true, "MaxSessionExpiry": true,
	"Logger": true,
	// Not settings of a file: set by the program or an embedder.
	"Store": true, "AuthMethods": true, "Version": true,
}

// lg is the broker's logger as of now. Safe for concurrent use.
func (b *Broker) lg() *zerolog.Logger { return b.logp.Load() }

// limits are the broker's Limits as of now. Safe for concurrent use.
func (b *Broker) limits() *Limits { return b.limp.Load() }

// Reload applies cfg's reloadable settings — the Limits and the Logger —
// to the running broker, without touching a connection. A cfg that does
// not validate changes nothing. It returns the names of the other Config
// fields whose values differ from the running ones: those need a restart.
// Safe for concurrent use.
func (b *Broker) Reload(cfg Config) (needRestart []string, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b.limp.Store(cfg.limits())
	b.logp.Store(&cfg.Logger)
	old, neu := reflect.ValueOf(b.cfg), reflect.ValueOf(cfg)
	for i := range old.NumField() {
		name := old.Type().Field(i).Name
		if !reloadable[name] && !reflect.DeepEqual(old.Field(i).Interface(), neu.Field(i).Interface()) {
			needRestart = append(needRestart, name)
		}
	}
	return needRestart, nil
}
