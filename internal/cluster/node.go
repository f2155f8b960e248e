package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/shoalmq/shoal/store"
)

// Settings are what the config file's cluster section says of a node
// (broker.ClusterConfig is this type): names and addresses.
type Settings struct {
	// Name is the cluster's name (cluster.name); routes from a cluster of
	// another name are refused. Letters, digits, - and _.
	Name string
	// Node is this node's name, unique in the cluster (cluster.node).
	Node string
	// Listen is where the embedded NATS server takes the other nodes'
	// routes (cluster.listen, "host:port").
	Listen string
	// Advertise, when set, is where the other nodes reach Listen
	// (cluster.advertise, "host:port"): behind NAT, a container's port
	// mapping or a proxy. NATS tells the nodes it routes to, which pass
	// it on; by default they reach Listen itself.
	Advertise string
	// Routes are the other nodes' Listen addresses, to connect to
	// (cluster.routes).
	Routes []string
	// Replicas is how many copies JetStream keeps of the cluster's
	// durable state (cluster.replicas): 3 survives one node's loss; 1 for
	// a one-node cluster. 1..5, and with an embedded server no more than
	// the nodes Routes names with this one. The config file's default is
	// DefaultReplicas.
	Replicas int
	// NATSURL, when set, connects to an external NATS cluster instead of
	// embedding a server (cluster.nats_url); Listen and Routes must then
	// be empty.
	NATSURL string
	// RescueAfter is how long a node may not answer the others' pings
	// before one of them rescues its sessions and the messages sent to it
	// (cluster.rescue_after, rescue.go): 0 is 5s; 1s at least.
	RescueAfter time.Duration
}

// Config says how a node joins its cluster: its Settings, and what the
// broker gives it.
type Config struct {
	Settings
	// DataDir is where the embedded server keeps its JetStream state, in
	// DataDir/cluster (the broker's data_dir).
	DataDir string
	// Logger gets the embedded server's lines (its chatter at debug).
	Logger zerolog.Logger
}

// Validate reports the first setting that cannot work, naming its key
// under "cluster". The config file's cluster section is checked by it.
func (c *Config) Validate() error {
	switch {
	case c.Name == "" || !tokenSafe(c.Name):
		return fmt.Errorf("cluster.name: %q must be letters, digits, - and _", c.Name)
	case c.Node == "" || !tokenSafe(c.Node):
		return fmt.Errorf("cluster.node: %q must be letters, digits, - and _", c.Node)
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("cluster.replicas: %d is outside 1..5", c.Replicas)
	case c.RescueAfter != 0 && c.RescueAfter < time.Second:
		return fmt.Errorf("cluster.rescue_after: %v is less than 1s (a node's pings are a second apart)", c.RescueAfter)
	case c.NATSURL != "" && (c.Listen != "" || c.Advertise != "" || len(c.Routes) > 0):
		return errors.New("cluster.nats_url: an external NATS cluster excludes listen, advertise and routes, which embed one: set one or the other")
	case c.NATSURL != "":
		return nil
	case c.DataDir == "":
		return errors.New("cluster: an embedded node needs a data_dir for its JetStream state")
	}
	if _, err := hostPort("cluster.listen", c.Listen); err != nil {
		return err
	}
	if c.Advertise != "" {
		if _, err := hostPort("cluster.advertise", c.Advertise); err != nil {
			return err
		}
	}
	for _, r := range c.Routes {
		if _, err := hostPort("cluster.routes", r); err != nil {
			return err
		}
		if r == c.Listen {
			return fmt.Errorf("cluster.routes: %q is this node's own listen address; list the other nodes", r)
		}
	}
	if nodes := len(c.Routes) + 1; c.Replicas > nodes {
		// JetStream cannot place more copies than there are servers: the
		// owners' bucket would wait for peers that never come.
		return fmt.Errorf("cluster.replicas: %d is more than the %d node(s) of the cluster: routes and this one", c.Replicas, nodes)
	}
	return nil
}

// DefaultReplicas is the Replicas of a config that does not say: with an
// embedded server, every node the config names (routes and this one), at
// most 3 — so three nodes each routing to the other two keep 3 copies and
// a node without routes keeps 1; with an external NATS cluster, whose size
// the config does not tell, 3.
func DefaultReplicas(routes int, external bool) int {
	if external {
		return 3
	}
	return min(3, routes+1)
}

func tokenSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if !safe(s[i]) {
			return false
		}
	}
	return true
}

func hostPort(key, addr string) (int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return 0, fmt.Errorf("%s: %q is not host:port", key, addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("%s: %q: port %q is not a number in 1..65535", key, addr, port)
	}
	return p, nil
}

// Node is this process's place in the cluster: the embedded NATS server
// (unless NATSURL names an external one), a connection to it, and
// JetStream. Its methods are safe for concurrent use.
type Node struct {
	cfg   Config
	srv   *server.Server // nil with an external NATS
	token string         // the embedded server's client token
	nc    *nats.Conn
	js    jetstream.JetStream
	log   zerolog.Logger
	pong  *nats.Subscription // answers this node's pings (Health)
}

// Start starts the embedded server (or connects to NATSURL) and waits,
// within ctx, until JetStream answers: with an embedded cluster, until
// enough nodes are up to elect its meta leader.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger}
	var err error
	if cfg.NATSURL != "" {
		n.nc, err = nats.Connect(cfg.NATSURL, nats.Name("shoal "+cfg.Node), nats.MaxReconnects(-1))
	} else {
		if n.srv, err = n.startServer(); err == nil {
			n.nc, err = nats.Connect("", nats.InProcessServer(n.srv), nats.Token(n.token), nats.Name("shoal "+cfg.Node), nats.MaxReconnects(-1))
		}
	}
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if n.js, err = jetstream.New(n.nc); err != nil {
		n.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	// The others know this node is up by its answers (Health, Rescuer).
	if n.pong, err = n.nc.Subscribe(pingSubject(cfg.Node), func(m *nats.Msg) { _ = m.Respond(nil) }); err != nil {
		n.Close()
		return nil, fmt.Errorf("cluster: answering pings: %w", err)
	}
	for {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := n.js.AccountInfo(actx)
		cancel()
		if err == nil {
			return n, nil
		}
		select {
		case <-ctx.Done():
			n.Close()
			return nil, fmt.Errorf("cluster: JetStream not ready: %w (last: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startServer starts the embedded NATS server: no client listener (the
// broker connects in process), routes to the other nodes, JetStream in
// DataDir/cluster.
func (n *Node) startServer() (*server.Server, error) {
	c := n.cfg
	host, port, _ := net.SplitHostPort(c.Listen)
	p, _ := strconv.Atoi(port)
	// The server's client listener is on loopback at a port of the
	// kernel's choosing, behind a token only this process knows: the
	// broker connects in process and nothing else needs it, but the
	// server will not start its routes without it (DontListen would).
	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	n.token = token
	opts := &server.Options{
		ServerName:    c.Node,
		Host:          "127.0.0.1",
		Port:          server.RANDOM_PORT,
		Authorization: token,
		NoSigs:        true,
		JetStream:     true,
		StoreDir:      filepath.Join(c.DataDir, store.ClusterDir), // beside the broker's store, which leaves it alone
		// A message between nodes is a PUBLISH and its frame
		// (MaxPacket): room for a max_packet_size of 8 MiB, where NATS
		// starts to warn, rather than NATS's default of 1 MiB, which
		// Shoal's default max_packet_size (1 MiB) would fill.
		MaxPayload: maxPayload,
	}
	if len(c.Routes) > 0 {
		// A one-node cluster without routes runs JetStream on its own:
		// a clustered JetStream refuses to start without them.
		opts.Cluster = server.ClusterOpts{Name: c.Name, Host: host, Port: p, Advertise: c.Advertise}
		for _, r := range c.Routes {
			opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats-route", Host: r})
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	srv.SetLoggerV2(natsLogger{n.log}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("the embedded NATS server did not start")
	}
	return srv, nil
}

// maxPayload is the embedded server's largest message.
const maxPayload = 8 << 20

// frameRoom is what a message's frame adds to its MQTT PUBLISH, at most:
// the PUBLISH's fixed header and packet id, which the frame does not
// carry, more than pay for the frame's own header and its shared group's
// name, which a filter bounds (MaxTopicLength).
const frameRoom = 2 * MaxTopicLength

// MaxPacket is the largest MQTT packet whose message the cluster can carry
// between nodes (and keep retained): NATS's max_payload, less room for
// the frame. A broker's max_packet_size in a cluster is at most this.
func (n *Node) MaxPacket() int { return int(n.nc.MaxPayload()) - frameRoom }

// Conn is the node's NATS connection.
func (n *Node) Conn() *nats.Conn { return n.nc }

// JetStream is the node's JetStream context.
func (n *Node) JetStream() jetstream.JetStream { return n.js }

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Node }

// RescueAfter is how long a node may not answer before the others rescue
// it: its config's rescue_after, or the default.
func (n *Node) RescueAfter() time.Duration {
	if n.cfg.RescueAfter > 0 {
		return n.cfg.RescueAfter
	}
	return rescueAfter
}

// lastOnLeader reads the last message on subject of stream from the
// stream's leader — not from a replica, which a direct get (what a
// bucket's Get makes) may ask and which may lag — and reports whether
// there is one, with its headers and revision.
func (n *Node) lastOnLeader(ctx context.Context, stream, subject string) (data []byte, hdr nats.Header, rev uint64, found bool, err error) {
	req, _ := json.Marshal(struct {
		LastBySubject string `json:"last_by_subj"`
	}{subject})
	reply, err := n.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, req)
	if err != nil {
		return nil, nil, 0, false, err
	}
	var resp struct {
		Message *struct {
			Seq  uint64 `json:"seq"`
			Hdrs []byte `json:"hdrs"`
			Data []byte `json:"data"`
		} `json:"message"`
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, nil, 0, false, fmt.Errorf("cluster: reading %s: %w", stream, err)
	}
	switch {
	case resp.Error != nil && resp.Error.Code == 404:
		return nil, nil, 0, false, nil
	case resp.Error != nil:
		return nil, nil, 0, false, fmt.Errorf("cluster: reading %s: %s", stream, resp.Error.Description)
	case resp.Message == nil:
		return nil, nil, 0, false, fmt.Errorf("cluster: reading %s: an empty answer", stream)
	}
	m := resp.Message
	if len(m.Hdrs) > 0 {
		if hdr, err = nats.DecodeHeadersMsg(m.Hdrs); err != nil {
			return nil, nil, 0, false, fmt.Errorf("cluster: reading %s: %w", stream, err)
		}
	}
	return m.Data, hdr, m.Seq, true, nil
}

// answers reports whether node answers its ping within pingWait.
func (n *Node) answers(node string) bool {
	_, err := n.nc.Request(pingSubject(node), nil, pingWait)
	return err == nil
}

// Close leaves the cluster: the connection drains, then the embedded
// server shuts down.
func (n *Node) Close() {
	if n.nc != nil {
		_ = n.nc.Drain()
		n.nc.Close()
	}
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
}

// randomToken returns 32 random bytes in hex.
func randomToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// natsLogger sends the embedded server's lines to zerolog: notices at
// debug (routes come and go, leaders change: chatter), warnings and
// errors as such — but a route that cannot connect yet, which NATS calls
// an error at its first attempt and then hourly, is a warning: nodes
// started together each try the others before they listen, and a node
// down shows in the cluster's status (nodes up).
type natsLogger struct{ log zerolog.Logger }

// routeRetry begins NATS's report of a failed attempt to connect a route.
const routeRetry = "Error trying to connect to route"

func (l natsLogger) Noticef(f string, a ...any) { l.log.Debug().Str("component", "nats").Msgf(f, a...) }
func (l natsLogger) Warnf(f string, a ...any)   { l.log.Warn().Str("component", "nats").Msgf(f, a...) }
func (l natsLogger) Fatalf(f string, a ...any)  { l.log.Error().Str("component", "nats").Msgf(f, a...) }
func (l natsLogger) Errorf(f string, a ...any) {
	if strings.HasPrefix(f, routeRetry) {
		l.Warnf(f, a...)
		return
	}
	l.log.Error().Str("component", "nats").Msgf(f, a...)
}
func (l natsLogger) Debugf(f string, a ...any) { l.log.Trace().Str("component", "nats").Msgf(f, a...) }
func (l natsLogger) Tracef(f string, a ...any) { l.log.Trace().Str("component", "nats").Msgf(f, a...) }
