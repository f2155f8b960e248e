package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalmq/shoal/internal/cluster"
	"github.com/shoalmq/shoal/internal/conn"
	"github.com/shoalmq/shoal/internal/handoff"
	"github.com/shoalmq/shoal/internal/replica"
	"github.com/shoalmq/shoal/session"
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
	b.handoff = &handoff.Sessions{Store: b.sessions, Subs: b.subs, Expiry: b.expiry, Persist: b.persist,
		Dispatch: b.disp, Conns: b.conns, Clock: func() int64 { return time.Now().UnixNano() }}
	local := clusterLocal{Sessions: b.handoff, Handler: b.conns, b: b}
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
		rs.RepairWith(b.handoff.Rewrite)
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
	peers.Handover(b.clusterSessions)
	if b.replicas != nil {
		// Before this node reads its subject of the forward stream: a
		// rescue of it, while it was gone, ends first.
		b.rescuer = cluster.NewRescuer()
		// The wills of a gone node's connections: every node's rescuer
		// tells its Wills, whichever rescues the node.
		b.rescuer.Gone = b.clusterWills.NodeGone
		if err := b.rescuer.Open(ctx, node, owners, b.clusterSessions, b.replicas, peers, log); err != nil {
			return err
		}
	}
	return nil
}

// startRouting settles the sessions this node loaded from its store with
// the cluster (settleSessions), then starts routing between the nodes:
// after the store writers are made and the router workers run, before the
// listeners open.
func (b *Broker) startRouting() error {
	if b.cluster == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(b.ctx, clusterStartTimeout)
	defer cancel()
	if b.rescuer != nil {
		b.settleSessions(ctx)
	}
	b.health = cluster.NewHealth()
	b.health.Open(b.cluster, b.peers, b.clusterSessions, b.rescuer, clusterMember{b}, b.lg().With().Str("component", "cluster").Logger())
	if err := b.peers.Start(ctx, b.disp); err != nil {
		return fmt.Errorf("cluster node %q: %w", b.cfg.Cluster.Node, err)
	}
	// The wills of the connections the last run had: due now that their
	// messages can reach every node.
	b.clusterWills.Restarted()
	return nil
}

// settleWorkers bounds the claims settleSessions makes at once;
// settleTries the claims of one session.
const (
	settleWorkers = 16
	settleTries   = 3
)

// settleSessions settles each persistent session this node loaded from
// its store with the cluster, by its owner's record: one this node still
// owns it claims again and writes whole into the replicated copy (which
// a node that restarts writes anew); one a rescuer took while this node
// was gone it claims back, from the copy, which has what came for it
// meanwhile; one that a client took elsewhere is not this node's to keep,
// and ends here (not in the copy: that is the new owner's), passing on
// for a while what still comes for it here (cluster's handover).
func (b *Broker) settleSessions(ctx context.Context) {
	var ids []string
	b.sessions.Range(func(s *session.Session) bool {
		if s.Persistent() {
			ids = append(ids, s.ClientID())
		}
		return true
	})
	if len(ids) == 0 {
		return
	}
	local := b.handoff
	self := b.cluster.Name()
	var kept, reclaimed, ended atomic.Int64
	work := make(chan string)
	var wg sync.WaitGroup
	for range min(settleWorkers, len(ids)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				ow, ok, err := b.owners.Get(ctx, id)
				if err != nil {
					b.lg().Warn().Err(err).Str("client", id).Msg("cluster: a stored session's owner could not be read; kept as it is")
					continue
				}
				if ok && ow.Node != self && !ow.Rescue {
					// Another node's now: what the others sent here for
					// it while this node was gone, and its rescuer had
					// not read yet, goes on there.
					b.leaveSettled(id, ow.Node)
					ended.Add(1)
					continue
				}
				err = ctx.Err()
				for try := 1; try <= settleTries && ctx.Err() == nil; try++ {
					// A claim that could not read the session's copy (its
					// rescuer kept it there) reads it again on the next.
					// It is made on the owner read above: a client that
					// claimed the session elsewhere meanwhile keeps it.
					done := make(chan error, 1)
					claimed := func(_ uint64, err error) { done <- err }
					if ok {
						b.clusterSessions.Reclaim(id, ow, claimed)
					} else {
						b.clusterSessions.Claim(id, false, claimed)
					}
					if err = <-done; err == nil || errors.Is(err, cluster.ErrOwnerChanged) {
						break
					}
				}
				if errors.Is(err, cluster.ErrOwnerChanged) {
					// Taken elsewhere since it was read: as above.
					to := ""
					if now, found, gerr := b.owners.Get(ctx, id); gerr == nil && found && now.Node != self {
						to = now.Node
					}
					b.leaveSettled(id, to)
					ended.Add(1)
					continue
				}
				if err != nil {
					b.lg().Warn().Err(err).Str("client", id).Msg("cluster: a stored session could not be claimed again")
					continue
				}
				if ok && ow.Rescue {
					reclaimed.Add(1)
					continue // adopted from the copy
				}
				local.Rewrite(id, b.replicas.CopyWriter())
				kept.Add(1)
			}
		}()
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	b.replicas.Flush()
	b.lg().Info().Int64("kept", kept.Load()).Int64("reclaimed", reclaimed.Load()).Int64("ended", ended.Load()).
		Msg("cluster: the stored sessions are settled with the cluster")
}

// leaveSettled ends here the stored session of clientID, which another
// node (to; "" if not known) has now: what still comes for it here goes
// on there for a while (cluster's handover). The copy is not written:
// the session there is the other node's. (A node back from a freeze
// still takes its own claim for the newest; ending the session would
// remove the new owner's copy — the client, reconnecting, started
// afresh, 470 messages lost in a freeze run.)
func (b *Broker) leaveSettled(clientID, to string) {
	b.replicas.Forget(clientID)
	filters := b.handoff.Filters(clientID)
	b.lg().Debug().Str("client", clientID).Str("to", to).Int("filters", len(filters)).
		Msg("cluster: a stored session is another node's; what comes for it here goes on there")
	if to != "" {
		b.peers.LeaveFor(clientID, to, filters)
	}
	_, _ = b.handoff.Give(clientID, false)
}

// retireWait bounds Retire's wait for the clients to leave.
const retireWait = 10 * time.Second

// clusterMember is the broker's side of its node's Health
// (cluster.Member).
type clusterMember struct{ b *Broker }

// Retire closes the clients' connections: the node is cut off, or was
// rescued while away.
func (m clusterMember) Retire() {
	ctx, cancel := context.WithTimeout(m.b.ctx, retireWait)
	defer cancel()
	if err := m.b.conns.Retire(ctx); err != nil {
		m.b.lg().Warn().Err(err).Msg("cluster: not every client left in time")
	}
}

// Rejoin reads the cluster's interest, retained messages and wills anew
// (their watches may have missed what changed while the node was cut
// off) and, if settle, settles the node's sessions with the cluster once
// the rescue of it, if any, is done, as a node that starts does
// (settleSessions).
func (m clusterMember) Rejoin(ctx context.Context, settle bool) error {
	b := m.b
	if err := b.peers.Rewatch(ctx); err != nil {
		return err
	}
	if err := b.clusterRetained.Rewatch(ctx); err != nil {
		return err
	}
	if err := b.clusterWills.Rewatch(ctx); err != nil {
		return err
	}
	if b.rescuer == nil || !settle {
		return nil
	}
	if err := b.rescuer.AwaitOwnRescue(ctx); err != nil {
		return err
	}
	b.settleSessions(ctx)
	return nil
}

// Hold stops, or starts again, the writers' waits for the replicated
// copy of the sessions (replica.Store.Hold).
func (m clusterMember) Hold(on bool) {
	if r := m.b.replicas; r != nil {
		r.Hold(on)
	}
}

// Resume sends what the connected clients' sessions queued while the node
// did not serve.
func (m clusterMember) Resume() {
	ctx, cancel := context.WithTimeout(m.b.ctx, retireWait)
	defer cancel()
	if err := m.b.conns.Resume(ctx); err != nil {
		m.b.lg().Warn().Err(err).Msg("cluster: not every client's queue was sent again in time")
	}
}

// closeCluster leaves the cluster, if the broker is in one: routing
// between the nodes stops, then the node.
func (b *Broker) closeCluster() {
	if b.health != nil {
		b.health.Close()
	}
	if b.rescuer != nil {
		b.rescuer.Close()
	}
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
	b *Broker
}

// adoptedInterestWait bounds Adopt's wait for the adopted session's
// interest to be in the bucket.
const adoptedInterestWait = 10 * time.Second

// Adopt adopts a session another node gave, or the replicated copy had,
// and waits until its subscriptions' interest is in the bucket, before
// its client hears CONNACK: what is published after reaches this node,
// not only the one the session left (a node gone, whose subject its
// rescuer reads for the sessions it keeps, not for this one).
func (l clusterLocal) Adopt(clientID string, bundle []byte) error {
	if err := l.Sessions.Adopt(clientID, bundle); err != nil {
		return err
	}
	if p := l.b.peers; p != nil {
		ctx, cancel := context.WithTimeout(context.Background(), adoptedInterestWait)
		defer cancel()
		if !p.Sync(ctx) {
			l.b.lg().Warn().Str("client", clientID).Msg("cluster: an adopted session's interest was not written in time")
		}
	}
	return nil
}
