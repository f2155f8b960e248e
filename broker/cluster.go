package broker

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/shoalmq/shoal/internal/cluster"
)

// ClusterConfig makes the broker one node of a cluster (the config file's
// cluster section): it starts an embedded NATS server with JetStream —
// routes to the other nodes, its state in DataDir/cluster — or connects
// to an external NATS cluster (NATSURL). Package internal/cluster checks
// the settings (cluster.Config.Validate, through Config.Validate) and runs
// the node.
type ClusterConfig struct {
	// Name is the cluster's name (cluster.name); nodes of a cluster with
	// another name are refused. Letters, digits, - and _.
	Name string
	// Node is this node's name, unique in the cluster (cluster.node).
	Node string
	// Listen is where the other nodes' routes connect (cluster.listen),
	// host:port.
	Listen string
	// Routes are the other nodes' Listen addresses (cluster.routes).
	Routes []string
	// Replicas is how many copies JetStream keeps of the cluster's state
	// (cluster.replicas), 1..5 and, embedded, at most the nodes Routes
	// names with this one. The config file's default is
	// cluster.DefaultReplicas: min(3, len(Routes)+1), or 3 with NATSURL.
	Replicas int
	// NATSURL connects to an external NATS cluster instead of embedding
	// a server (cluster.nats_url); Listen and Routes are then left empty.
	NATSURL string
}

// clusterStartTimeout bounds Start's wait for the cluster: nodes started
// together find each other and elect JetStream's meta leader within a few
// seconds; a node whose peers are not up by then fails to start rather
// than serve without its cluster.
const clusterStartTimeout = 30 * time.Second

// clusterConfig is c's cluster section as package cluster takes it: the
// broker's logger and data_dir.
func (c *Config) clusterConfig() cluster.Config {
	cc := c.Cluster
	return cluster.Config{
		Name: cc.Name, Node: cc.Node, Listen: cc.Listen, Routes: slices.Clone(cc.Routes),
		Replicas: cc.Replicas, NATSURL: cc.NATSURL,
		DataDir: c.DataDir, Logger: c.Logger,
	}
}

// startCluster starts the cluster node, when Config.Cluster asks for one,
// and opens the session owners' bucket on it, within clusterStartTimeout.
func (b *Broker) startCluster() error {
	if b.cfg.Cluster == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(b.ctx, clusterStartTimeout)
	defer cancel()
	node, err := cluster.Start(ctx, b.cfg.clusterConfig())
	if err != nil {
		return fmt.Errorf("cluster node %q: %w", b.cfg.Cluster.Node, err)
	}
	owners, err := node.OpenOwners(ctx)
	if err != nil {
		node.Close()
		return fmt.Errorf("cluster node %q: %w", b.cfg.Cluster.Node, err)
	}
	b.cluster, b.owners = node, owners
	b.lg().Info().Str("cluster", b.cfg.Cluster.Name).Str("node", node.Name()).Int("replicas", b.cfg.Cluster.Replicas).
		Msg("joined the cluster")
	return nil
}

// closeCluster leaves the cluster, if the broker is in one.
func (b *Broker) closeCluster() {
	if b.cluster != nil {
		b.cluster.Close()
	}
}
