package auth

// MQTT 5 reason codes an *Error can carry (MQTT 5.0 section 2.4, table 2-6).
// They are plain bytes, not codec.ReasonCode, so that this package does not
// depend on the packet layer; the broker converts them where it builds the
// CONNACK, AUTH or DISCONNECT.
const (
	CodeUnspecified       byte = 0x80 // Unspecified error
	CodeMalformed         byte = 0x81 // Malformed Packet
	CodeProtocol          byte = 0x82 // Protocol Error
	CodeBadUserOrPassword byte = 0x86 // Bad User Name or Password
	CodeNotAuthorized     byte = 0x87 // Not authorized
	CodeServerUnavailable byte = 0x88 // Server unavailable
	CodeServerBusy        byte = 0x89 // Server busy
	CodeBadMethod         byte = 0x8C // Bad authentication method
)

// Error is a refused authentication. Code is the MQTT reason code the
// broker answers with: in a CONNACK during the first authentication
// [MQTT-4.12.0-4], in a DISCONNECT after a failed re-authentication
// [MQTT-4.12.1-2]. Msg is for logs and is never sent to the client: the
// Reason String would tell an attacker which check failed.
type Error struct {
	Code byte
	Msg  string
}

func (e *Error) Error() string { return "auth: " + e.Msg }

// Errors returned by this package, one per cause. Compare with ==.
var (
	// ErrUnknownMethod is for the broker when Registry.Lookup finds no
	// method by the client's name [MQTT-4.12.0-1].
	ErrUnknownMethod = &Error{CodeBadMethod, "unsupported authentication method"}

	// ErrExchangeEnded: Step was called after the exchange succeeded or
	// failed. Every Exchange returns it then, so that a client cannot keep
	// an exchange going past its end.
	ErrExchangeEnded = &Error{CodeProtocol, "step after the exchange ended"}

	// ErrKeyDerivation: PBKDF2 refused the parameters (in FIPS 140-3 mode it
	// refuses salts shorter than 16 bytes): of a PasswordFile's $7$ entry,
	// or of a server-first message to the SCRAM client (auth/scram).
	ErrKeyDerivation = &Error{CodeUnspecified, "key derivation failed"}
)
