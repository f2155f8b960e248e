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

	// ErrTooLong: one message is longer than maxMessage.
	ErrTooLong = &Error{CodeMalformed, "authentication data too long"}
	// ErrMalformed: a SCRAM message breaks the RFC 5802 section 7 grammar.
	ErrMalformed = &Error{CodeMalformed, "malformed SCRAM message"}
	// ErrBase64: an attribute that must be base64 is not (strict RFC 4648,
	// no line breaks, no stray padding bits).
	ErrBase64 = &Error{CodeMalformed, "invalid base64 in SCRAM message"}
	// ErrExchangeEnded: Step was called after the exchange succeeded or
	// failed. SCRAM takes at most three steps; a fourth is a protocol error.
	ErrExchangeEnded = &Error{CodeProtocol, "step after the exchange ended"}

	// ErrChannelBinding: the client asked for channel binding ("p=" gs2
	// flag), which is SCRAM-SHA-256-PLUS, a method this package does not
	// offer (RFC 5802 section 6).
	ErrChannelBinding = &Error{CodeBadMethod, "channel binding not supported"}
	// ErrExtension: a mandatory extension ("m=") is present, which RFC 5802
	// section 5.1 says MUST fail the authentication.
	ErrExtension = &Error{CodeBadMethod, "mandatory SCRAM extension not supported"}
	// ErrAuthzID: the client named an authorization identity ("a="); only
	// authenticating as oneself is supported.
	ErrAuthzID = &Error{CodeNotAuthorized, "authorization identity not supported"}
	// ErrUsername: the user name is empty or not printable ASCII. Printable
	// ASCII is the range where SASLprep (RFC 4013) is the identity mapping, so
	// no normalisation table is needed; anything else is refused.
	ErrUsername = &Error{CodeBadUserOrPassword, "user name is not printable ASCII"}

	// ErrBindingMismatch: client-final "c=" is not the base64 of the gs2
	// header the client sent first (RFC 5802 section 5.1, "c").
	ErrBindingMismatch = &Error{CodeNotAuthorized, "channel binding value does not match gs2 header"}
	// ErrNonce: client-final "r=" is not the nonce the server sent.
	ErrNonce = &Error{CodeNotAuthorized, "nonce mismatch"}
	// ErrBadCredentials: the proof is wrong. An unknown user gets this same
	// error, at the same step, so the two cannot be told apart.
	ErrBadCredentials = &Error{CodeBadUserOrPassword, "bad user name or password"}
	// ErrStoredCredentials: the CredentialStore returned credentials that
	// cannot be used (no salt, iterations < 1, wrong key lengths). This is
	// a configuration error, not the client's.
	ErrStoredCredentials = &Error{CodeUnspecified, "stored credentials unusable"}

	// Errors of SCRAMClient, for a client that answers a bad server with
	// DISCONNECT.

	// ErrServerNonce: server-first "r=" does not extend the client's nonce.
	ErrServerNonce = &Error{CodeNotAuthorized, "server nonce does not extend the client nonce"}
	// ErrIterations: server-first "i=" is outside [minClientIterations,
	// maxClientIterations].
	ErrIterations = &Error{CodeNotAuthorized, "iteration count out of range"}
	// ErrServerSignature: server-final "v=" is wrong: the server does not
	// know the password's keys.
	ErrServerSignature = &Error{CodeNotAuthorized, "server signature mismatch"}
	// ErrServerRefused: the server sent server-error ("e=").
	ErrServerRefused = &Error{CodeNotAuthorized, "server reported an error"}
	// ErrClientState: SCRAMClient methods called out of order or twice.
	ErrClientState = &Error{CodeProtocol, "SCRAM client call out of order"}
	// ErrKeyDerivation: PBKDF2 refused the parameters (in FIPS 140-3 mode it
	// refuses salts shorter than 16 bytes).
	ErrKeyDerivation = &Error{CodeUnspecified, "key derivation failed"}
)
