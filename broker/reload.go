package broker

import (
	"reflect"

	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/internal/limit"
)

// limits returns c's settings that a running broker can change (Reload),
// as the connections and the router read them (package limit): each is
// read afresh when it applies, so a new value holds for what comes after —
// a new connection's keep-alive cap and window, a message queued from now
// on — and what was decided stays.
func (c *Config) limits() *limit.Limits {
	return &limit.Limits{
		ConnectTimeout:   c.ConnectTimeout,
		MaxKeepAlive:     c.MaxKeepAlive,
		MaxInflight:      c.MaxInflight,
		MaxQueued:        c.MaxQueued,
		DropOldest:       c.QueuePolicy == DropOldest,
		DisconnectSlow:   c.SlowConsumer == DisconnectSlow,
		RetryInterval:    c.RetryInterval,
		MaxSessionExpiry: c.MaxSessionExpiry,

		MaxConnections:    c.maxConnections(),
		ConnectRate:       c.ConnectRate,
		ConnectBurst:      c.ConnectBurst,
		PublishRate:       c.PublishRate,
		PublishBurst:      c.PublishBurst,
		MaxSubscriptions:  c.MaxSubscriptions,
		MaxTopicLength:    c.MaxTopicLength,
		MaxTopicLevels:    c.MaxTopicLevels,
		MaxQueuedBytes:    c.MaxQueuedBytes,
		MaxClientIDLength: c.MaxClientIDLength,
	}
}

// reloadable are the Config fields Reload applies: those of limits, and
// the Logger (its level).
var reloadable = map[string]bool{
	"ConnectTimeout": true, "MaxKeepAlive": true, "MaxInflight": true, "MaxQueued": true,
	"QueuePolicy": true, "SlowConsumer": true, "RetryInterval": true, "MaxSessionExpiry": true,
	"Logger":         true,
	"MaxConnections": true, "ConnectRate": true, "ConnectBurst": true, "PublishRate": true,
	"PublishBurst": true, "MaxSubscriptions": true, "MaxTopicLength": true, "MaxTopicLevels": true,
	"MaxQueuedBytes": true, "MaxClientIDLength": true,
	// Swapped whole by Reload: a SIGHUP re-reads the password and ACL
	// files; connected clients keep what they were granted.
	"AllowAnonymous": true, "Authenticator": true, "Authorizer": true,
	// Not settings of a file: set by the program or an embedder.
	"Store": true, "Version": true, "Import": true,
	// Certificates reload; reloadTransports names what needs a restart.
	"Transports": true,
}

// lg is the broker's logger as of now. Safe for concurrent use.
func (b *Broker) lg() *zerolog.Logger { return b.logp.Load() }

// limits are the broker's Limits as of now. Safe for concurrent use.
func (b *Broker) limits() *limit.Limits { return b.limp.Load() }

// Reload applies cfg's reloadable settings — the limits and the Logger —
// to the running broker, without touching a connection. It also reads the
// TLS certificate files again (Transports). A cfg that does not validate,
// or whose certificates do not load, changes nothing. It returns the names
// of the other Config fields whose values differ from the running ones
// (for Transports, "Transports.<field>"): those need a restart.
// Safe for concurrent use.
func (b *Broker) Reload(cfg Config) (needRestart []string, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if needRestart, err = b.reloadTransports(cfg.Transports); err != nil {
		return nil, err // certificates that do not load change nothing
	}
	b.limp.Store(cfg.limits())
	b.logp.Store(&cfg.Logger)
	b.conns.SetAccess(cfg.access())
	old, neu := reflect.ValueOf(b.cfg), reflect.ValueOf(cfg)
	for i := range old.NumField() {
		name := old.Type().Field(i).Name
		if !old.Type().Field(i).IsExported() {
			continue // set by tests, never by a reload
		}
		if !reloadable[name] && !reflect.DeepEqual(old.Field(i).Interface(), neu.Field(i).Interface()) {
			needRestart = append(needRestart, name)
		}
	}
	return needRestart, nil
}
