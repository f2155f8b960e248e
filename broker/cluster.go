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
// to an external NATS cluster (NATSURL). Its fields are documented on
// package internal/cluster's Settings, which it is; cluster.Config.Validate
// checks them, through Config.Validate, with the broker's DataDir.
type ClusterConfig = cluster.Settings

// clusterStartTimeout bounds Start's wait for the cluster: nodes started
// together find each other and elect JetStream's meta leader within a few
// seconds; a node whose peers are not up by then fails to start rather
// than serve without its cluster.
const clusterStartTimeout = 30 * time.Second

// clusterConfig is c's cluster section as package cluster takes it: the
// broker's logger and data_dir.
func (c *Config) clusterConfig() cluster.Config {
	cc := cluster.Config{Settings: *c.Cluster, DataDir: c.DataDir, Logger: c.Logger}
	cc.Routes = slices.Clone(cc.Routes) // the node's own: nothing the caller keeps
	return cc
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
