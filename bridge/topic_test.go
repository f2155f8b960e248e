package bridge

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestRemapTable runs the rows of the table in Mosquitto's mosquitto.conf
// manual (topic): publishing Full Local Topic locally reaches the remote
// broker as Full Remote Topic, and back.
func TestRemapTable(t *testing.T) {
	for _, c := range []struct {
		pattern, local, remote string
		fullLocal, fullRemote  string
	}{
		{"pattern", "L/", "R/", "L/pattern", "R/pattern"},
		{"pattern", "L/", "", "L/pattern", "pattern"},
		{"pattern", "", "R/", "pattern", "R/pattern"},
		{"pattern", "", "", "pattern", "pattern"},
		{"", "local", "remote", "local", "remote"},
	} {
		tp := []Topic{{Pattern: c.pattern, Direction: Both, LocalPrefix: c.local, RemotePrefix: c.remote}}
		if err := tp[0].check(); err != nil {
			t.Fatalf("%+v: %v", tp[0], err)
		}
		if got := tp[0].Local(); got != c.fullLocal {
			t.Errorf("%+v: local filter %q, want %q", tp[0], got, c.fullLocal)
		}
		if got := toRemote(tp, c.fullLocal); got != c.fullRemote {
			t.Errorf("%+v: toRemote(%q) = %q, want %q", tp[0], c.fullLocal, got, c.fullRemote)
		}
		if got := toLocal(tp, c.fullRemote); got != c.fullLocal {
			t.Errorf("%+v: toLocal(%q) = %q, want %q", tp[0], c.fullRemote, got, c.fullLocal)
		}
	}
	// The invalid rows.
	for _, tp := range []Topic{
		{Pattern: "", LocalPrefix: "local"},
		{Pattern: "", RemotePrefix: "remote"},
		{Pattern: ""},
	} {
		if tp.check() == nil {
			t.Errorf("%+v: accepted", tp)
		}
	}
}

// TestRemapWildcards: the manual's whole-tree example and the rules on
// which line renames.
func TestRemapWildcards(t *testing.T) {
	tp := []Topic{{Pattern: "#", Direction: Both, QoS: 2, LocalPrefix: "local/topic/", RemotePrefix: "remote/topic/"}}
	if got := toRemote(tp, "local/topic/a/b"); got != "remote/topic/a/b" {
		t.Errorf("toRemote = %q", got)
	}
	if got := toLocal(tp, "remote/topic/a/b"); got != "local/topic/a/b" {
		t.Errorf("toLocal = %q", got)
	}
	// The manual's example: clients/total in 0 test/mosquitto/org/ $SYS/broker/
	in := []Topic{{Pattern: "clients/total", Direction: In, LocalPrefix: "test/mosquitto/org/", RemotePrefix: "$SYS/broker/"}}
	if got := toLocal(in, "$SYS/broker/clients/total"); got != "test/mosquitto/org/clients/total" {
		t.Errorf("toLocal = %q", got)
	}
	// An "in" line does not rename what goes out, and a line without
	// prefixes renames nothing, even when it comes first.
	two := []Topic{
		{Pattern: "a/#", Direction: Out},
		{Pattern: "a/#", Direction: In, LocalPrefix: "x/"},
		{Pattern: "#", Direction: Out, LocalPrefix: "", RemotePrefix: "edge1/"},
	}
	if got := toRemote(two, "a/b"); got != "edge1/a/b" {
		t.Errorf("toRemote = %q", got)
	}
	if got := toLocal(two, "a/b"); got != "x/a/b" {
		t.Errorf("toLocal = %q", got)
	}
}

func TestValidateNamesTheDirective(t *testing.T) {
	good := func() Connection {
		c := DefaultConnection("edge")
		c.Addresses = []string{"127.0.0.1"}
		c.Topics = []Topic{{Pattern: "a/#", Direction: Out, QoS: 1}}
		c.RemoteClientID = "edge-1"
		return c
	}
	cn, err := good().withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cn.Addresses[0] != "127.0.0.1:1883" || cn.LocalClientID != "local.edge-1" ||
		cn.NotificationTopic != "$SYS/broker/connection/edge-1/state" {
		t.Errorf("defaults: %+v", cn)
	}
	for _, c := range []struct {
		directive string
		mod       func(*Connection)
	}{
		{"connection", func(c *Connection) { c.Name = "" }},
		{"address", func(c *Connection) { c.Addresses = nil }},
		{"address", func(c *Connection) { c.Addresses = []string{"h:99999"} }},
		{"address", func(c *Connection) { c.Addresses = []string{"::1"} }},
		{"topic", func(c *Connection) { c.Topics = nil }},
		{"topic", func(c *Connection) { c.Topics[0].QoS = 3 }},
		{"topic", func(c *Connection) { c.Topics[0].LocalPrefix = "a/+/" }},
		{"topic", func(c *Connection) { c.Topics[0].Pattern = "a/#/b" }},
		{"bridge_protocol_version", func(c *Connection) { c.Protocol = "mqttv4" }},
		{"remote_password", func(c *Connection) { c.RemotePassword = "pw" }},
		{"keepalive_interval", func(c *Connection) { c.KeepAlive = time.Second }},
		{"restart_timeout", func(c *Connection) { c.RestartTimeout = Backoff{Base: 10 * time.Second, Cap: time.Second} }},
		{"bridge_cafile", func(c *Connection) { c.TLS.CertFile, c.TLS.KeyFile = "c", "k" }},
		{"bridge_certfile", func(c *Connection) { c.TLS.CAFile, c.TLS.CertFile = "ca", "c" }},
		{"local_clientid", func(c *Connection) { c.LocalClientID = c.RemoteClientID }},
	} {
		cn := good()
		c.mod(&cn)
		err := Config{Connections: []Connection{cn}}.Validate()
		if err == nil || !strings.Contains(err.Error(), c.directive+":") {
			t.Errorf("%s: got %v", c.directive, err)
		}
	}
	twice := Config{Connections: []Connection{good(), good()}}
	if err := twice.Validate(); err == nil || !strings.Contains(err.Error(), "connection:") {
		t.Errorf("a name used twice: %v", err)
	}
}

// TestConfigErrorPlaces: Validate's error says which connection and which
// topic line is at fault, for a loader to point at its line.
func TestConfigErrorPlaces(t *testing.T) {
	cn := func(name string, topics ...Topic) Connection {
		c := DefaultConnection(name)
		c.Addresses = []string{"127.0.0.1"}
		c.Topics = topics
		c.RemoteClientID = name + "-1"
		return c
	}
	ok := Topic{Pattern: "a/#"}
	bad := Topic{Pattern: "b/#", QoS: 3}
	err := Config{Connections: []Connection{cn("one", ok), cn("two", ok, ok, bad)}}.Validate()
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Index != 1 || ce.Name != "two" || ce.Directive != "topic" || ce.Topic != 2 {
		t.Fatalf("%v: %+v", err, ce)
	}
	if err.Error() != `bridge "two": topic: "b/#": QoS 3 is not 0, 1 or 2` {
		t.Errorf("message %q", err)
	}
	err = Config{Connections: []Connection{cn("one", ok), cn("one", ok)}}.Validate()
	if !errors.As(err, &ce) || ce.Index != 1 || ce.Directive != "connection" || ce.Topic != -1 {
		t.Errorf("a name twice: %v: %+v", err, ce)
	}
}
