package brokers

// The brokers, by the names reports use.
const (
	Shoal = "shoal"
	// ShoalBefore is Shoal built at an earlier revision (-before REV):
	// the same run then says what a change did, side by side.
	ShoalBefore = "shoal-before"
	// ShoalNoCoalesce is the working tree's Shoal with coalesce: 0s, every
	// delivery written at once: beside Shoal, what the coalescing window
	// buys in CPU and costs in latency. Only when named in -brokers.
	ShoalNoCoalesce = "shoal-coalesce0"
	// ShoalNagle is the working tree's Shoal with tcp_nodelay: false,
	// Nagle's algorithm on as Mosquitto runs by default: beside Shoal,
	// what the kernel's holding of small writes would buy and cost in
	// place of the broker's own coalescing. Only when named in -brokers.
	ShoalNagle = "shoal-nagle"
	// ShoalCluster is three Shoal processes as one cluster (ClusterNodes,
	// ShoalClusterConfigs), in the cluster scenario only.
	ShoalCluster = "shoal-3nodes"
	// Mosquitto runs as users run it: Nagle's algorithm on, its default
	// (set_tcp_nodelay false).
	Mosquitto = "mosquitto"
	// MosquittoNoDelay is Mosquitto with set_tcp_nodelay true, like every
	// other peer: the two together say what is the TCP stack's choice and
	// what is the broker.
	MosquittoNoDelay = "mosquitto-nodelay"
	Mochi            = "mochi"
	Floor            = "floor"
)

// All returns every broker name but ShoalBefore (which needs a revision
// to build), in the order reports list them.
func All() []string { return []string{Shoal, Mosquitto, MosquittoNoDelay, Mochi, Floor} }

// IsMosquitto reports whether broker is one of the Mosquitto configurations.
func IsMosquitto(broker string) bool { return broker == Mosquitto || broker == MosquittoNoDelay }

// IsShoal reports whether broker is Shoal, as it is, as it was, without
// coalescing or with Nagle's algorithm.
func IsShoal(broker string) bool {
	return broker == Shoal || broker == ShoalBefore || broker == ShoalNoCoalesce || broker == ShoalNagle
}

// ClusterNodes is how many Shoal processes ShoalCluster runs.
const ClusterNodes = 3
