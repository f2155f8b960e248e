package config

import (
	"errors"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/shoalmq/shoal/broker"
	"github.com/shoalmq/shoal/internal/cluster"
)

// The cluster key of a YAML file: a mapping of the keys clusterKeys
// lists, read into a broker.ClusterConfig; {} (the default) is none. What
// the values must be — names of letters, digits, - and _, host:port
// addresses, replicas 1..5 and no more than the nodes named, nats_url
// instead of listen and routes, a data_dir — is cluster.Config.Validate's,
// which broker.Config.Validate runs; its errors name "cluster.<key>", and
// Parse places them at that key (parseYAML notes where each is).

// clusterKeys lists the keys of the cluster section. A function, not a
// variable: nothing may change it.
func clusterKeys() []struct {
	key string
	set func(c *broker.ClusterConfig, v *yaml.Node) error
} {
	str := func(ptr func(c *broker.ClusterConfig) *string) func(*broker.ClusterConfig, *yaml.Node) error {
		return func(c *broker.ClusterConfig, v *yaml.Node) (err error) {
			*ptr(c), err = stringValue(v)
			return err
		}
	}
	return []struct {
		key string
		set func(c *broker.ClusterConfig, v *yaml.Node) error
	}{
		{"name", str(func(c *broker.ClusterConfig) *string { return &c.Name })},
		{"node", str(func(c *broker.ClusterConfig) *string { return &c.Node })},
		{"listen", str(func(c *broker.ClusterConfig) *string { return &c.Listen })},
		{"advertise", str(func(c *broker.ClusterConfig) *string { return &c.Advertise })},
		{"routes", func(c *broker.ClusterConfig, v *yaml.Node) (err error) {
			c.Routes, err = stringList(v)
			return err
		}},
		{"replicas", func(c *broker.ClusterConfig, v *yaml.Node) (err error) {
			c.Replicas, err = intValue(v)
			return err
		}},
		{"nats_url", str(func(c *broker.ClusterConfig) *string { return &c.NATSURL })},
		{"rescue_after", func(c *broker.ClusterConfig, v *yaml.Node) (err error) {
			c.RescueAfter, err = durationValue(v)
			return err
		}},
	}
}

// clusterValue reads the cluster key: nil for {}. Replicas left out is
// cluster.DefaultReplicas. Its errors about one key are *nodeError naming
// "cluster.<key>", at the value.
func clusterValue(n *yaml.Node) (*broker.ClusterConfig, error) {
	if n.Kind != yaml.MappingNode {
		return nil, wrongType("a mapping (name: ..., node: ..., listen: ..., routes: ...), or {} for none", n)
	}
	pairs, err := mappingPairs(n)
	if err != nil || len(pairs) == 0 {
		return nil, err
	}
	keys := clusterKeys()
	known := make([]string, len(keys))
	for i, k := range keys {
		known[i] = k.key
	}
	c := &broker.ClusterConfig{}
	replicas := false
	for _, p := range pairs {
		i := slices.Index(known, p.key.Value)
		if i < 0 {
			return nil, &nodeError{n: p.key, err: unknownKeyOf(p.key.Value, known)}
		}
		if err := keys[i].set(c, p.value); err != nil {
			ne := &nodeError{n: p.value, err: err}
			errors.As(err, &ne) // a route's own node, from stringList
			return nil, &nodeError{n: ne.n, err: ne.err, key: "cluster." + p.key.Value}
		}
		replicas = replicas || p.key.Value == "replicas"
	}
	if !replicas {
		c.Replicas = cluster.DefaultReplicas(len(c.Routes), c.NATSURL != "")
	}
	return c, nil
}
