package broker

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/shoalmq/shoal/internal/cluster"
	"github.com/shoalmq/shoal/internal/conn"
	"github.com/shoalmq/shoal/internal/handoff"
	"github.com/shoalmq/shoal/internal/replica"
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
	b.cluster = node
	if err := b.joinCluster(ctx); err != nil {
		b.closeCluster()
		return fmt.Errorf("cluster node %q: %w", b.cfg.Cluster.Node, err)
	}
	b.lg().Info().Str("cluster", b.cfg.Cluster.Name).Str("node", node.Name()).Int("replicas", b.cfg.Cluster.Replicas).
		Msg("joined the cluster")
	return nil
}

// joinCluster puts the broker's state on its node: the session owners'
// bucket, the retained messages (read in whole before it returns), the
// delayed wills (published through the expiry's SendWill), and the Peers, which publish this node's subscriptions (those restored
// too) and route between the nodes, into the router workers.
func (b *Broker) joinCluster(ctx context.Context) error {
	node := b.cluster
	if max := node.MaxPacket(); b.cfg.MaxPacketSize > max {
		return fmt.Errorf("max_packet_size: %d is more than the cluster's NATS carries (%d, its max_payload less a message's frame)",
			b.cfg.MaxPacketSize, max)
	}
	owners, err := node.OpenOwners(ctx)
	if err != nil {
		return err
	}
	b.owners = owners
	log := b.lg().With().Str("component", "cluster").Logger()
	local := clusterLocal{Sessions: &handoff.Sessions{Store: b.sessions, Subs: b.subs, Expiry: b.expiry,
		Persist: b.persist, Dispatch: b.disp, Clock: func() int64 { return time.Now().UnixNano() }}, Handler: b.conns}
	local.Sessions.Conns = b.conns
	var replicas cluster.Replicas
	if st := b.persist.Store(); st != nil {
		// The writers, made after this, copy the sessions this node
		// holds into the cluster's stream.
		rs, err := replica.Open(ctx, node, st, b.clusterSessions, log)
		if err != nil {
			return err
		}
		b.replicas, replicas = rs, rs
		b.persist.Layer(rs)
	}
	if err := b.clusterSessions.Open(node, owners, local, replicas, log); err != nil {
		return err
	}
	if err := b.clusterRetained.Open(ctx, node, log); err != nil {
		return err
	}
	if err := b.clusterWills.Open(ctx, node, b.expiry, log); err != nil {
		return err
	}
	peers, err := node.NewPeers(ctx, b.clusterTable, log)
	if err != nil {
		return err
	}
	b.peers = peers
	return peers.Start(ctx, b.disp)
}

// closeCluster leaves the cluster, if the broker is in one: routing
// between the nodes stops, then the node.
func (b *Broker) closeCluster() {
	if b.clusterSessions != nil {
		b.clusterSessions.Close()
	}
	if b.peers != nil {
		b.peers.Close()
	}
	if b.clusterRetained != nil {
		b.clusterRetained.Close()
	}
	if b.clusterWills != nil {
		b.clusterWills.Close() // the wills it put stay, for the others
	}
	if b.replicas != nil {
		// What the loops and workers left uncommitted is copied too,
		// while the node is up.
		if err := b.persist.CommitAll(); err != nil {
			b.lg().Error().Err(err).Msg("committing the store before leaving the cluster")
		}
		b.replicas.Detach()
	}
	if b.cluster != nil {
		b.cluster.Close()
	}
}

// clusterLocal is this node's side of moving sessions between nodes
// (cluster.Local): package handoff's, with the connections' TakeOver.
type clusterLocal struct {
	*handoff.Sessions
	*conn.Handler
}
