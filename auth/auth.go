package auth

// Method is one enhanced authentication method, named by the Authentication
// Method property of CONNECT and AUTH (MQTT 5.0 section 4.12).
//
// A Method is built once, from configuration, and shared by every
// connection: implementations must be safe for concurrent use.
type Method interface {
	// Name is the Authentication Method string that selects this method,
	// compared byte for byte, e.g. "SCRAM-SHA-256". Safe for concurrent use.
	Name() string
	// Start begins one exchange: for a CONNECT that names this method, or
	// for an AUTH with reason 0x19 (Re-authenticate) [MQTT-4.12.1-1].
	// clientID is the connection's client identifier, for methods that bind
	// to it; SCRAM ignores it. Safe for concurrent use; the Exchange it
	// returns is not.
	Start(clientID string) Exchange
}

// Exchange is one authentication conversation. It belongs to the goroutine
// that drives the connection (its event loop) and is not safe for
// concurrent use.
type Exchange interface {
	// Step consumes the client's Authentication Data (from CONNECT for the
	// first step, from AUTH 0x18 or 0x19 afterwards; nil or empty if the
	// packet had none) and returns the server's reply data.
	//
	// done == false, err == nil: send out in AUTH 0x18 (Continue
	// authentication) [MQTT-4.12.0-2] and wait for the client's AUTH 0x18.
	// done == true: the client is authenticated; out, if not empty, is the
	// Authentication Data of the CONNACK 0x00 or AUTH 0x00.
	// err != nil: an *Error; refuse with its Code [MQTT-4.12.0-4]
	// [MQTT-4.12.1-2]. The exchange is then over: every later Step, like
	// every Step after done == true, returns ErrExchangeEnded.
	//
	// Step does not keep in after it returns. out is newly allocated and
	// belongs to the caller.
	Step(in []byte) (out []byte, done bool, err error)
	// Identity is the authenticated user name once Step has returned
	// done == true, and "" before.
	Identity() string
}

// Registry maps Authentication Method names to methods. The broker builds
// one from its configuration; there is no global registry. It is immutable
// after NewRegistry, so all its methods are safe for concurrent use.
type Registry struct {
	byName map[string]Method
	names  []string // in the order given to NewRegistry
}

// NewRegistry returns a registry of methods. Names are compared exactly
// (MQTT strings are case-sensitive). Two methods with the same name are a
// configuration error that must be caught before this call: NewRegistry
// panics on them, and on a nil method.
func NewRegistry(methods ...Method) *Registry {
	r := &Registry{byName: make(map[string]Method, len(methods))}
	for _, m := range methods {
		if m == nil {
			panic("auth: nil Method")
		}
		n := m.Name()
		if _, dup := r.byName[n]; dup {
			panic("auth: duplicate authentication method " + n)
		}
		r.byName[n] = m
		r.names = append(r.names, n)
	}
	return r
}

// Lookup returns the method named name. When it reports false the broker
// refuses the CONNECT with ErrUnknownMethod's code (0x8C) [MQTT-4.12.0-1].
// Safe for concurrent use.
func (r *Registry) Lookup(name string) (Method, bool) {
	m, ok := r.byName[name]
	return m, ok
}

// Names returns the registered method names in the order given to
// NewRegistry, in a new slice the caller may keep. Safe for concurrent use.
func (r *Registry) Names() []string {
	return append([]string(nil), r.names...)
}
