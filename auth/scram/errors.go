package scram

import "github.com/shoalmq/shoal/auth"

// Errors returned by this package, one per cause. Compare with ==. They are
// *auth.Error values, so the broker turns them into reason codes as it does
// every other refusal. Two come from package auth, shared with its other
// users: auth.ErrExchangeEnded (a Step after the exchange ended, part of the
// Exchange contract) and auth.ErrKeyDerivation (Client's PBKDF2 refused the
// parameters).
var (
	// ErrTooLong: one message is longer than maxMessage.
	ErrTooLong = &auth.Error{Code: auth.CodeMalformed, Msg: "authentication data too long"}
	// ErrMalformed: a SCRAM message breaks the RFC 5802 section 7 grammar.
	ErrMalformed = &auth.Error{Code: auth.CodeMalformed, Msg: "malformed SCRAM message"}
	// ErrBase64: an attribute that must be base64 is not (strict RFC 4648,
	// no line breaks, no stray padding bits).
	ErrBase64 = &auth.Error{Code: auth.CodeMalformed, Msg: "invalid base64 in SCRAM message"}

	// ErrChannelBinding: the client asked for channel binding ("p=" gs2
	// flag), which is SCRAM-SHA-256-PLUS, a method this package does not
	// offer (RFC 5802 section 6).
	ErrChannelBinding = &auth.Error{Code: auth.CodeBadMethod, Msg: "channel binding not supported"}
	// ErrExtension: a mandatory extension ("m=") is present, which RFC 5802
	// section 5.1 says MUST fail the authentication.
	ErrExtension = &auth.Error{Code: auth.CodeBadMethod, Msg: "mandatory SCRAM extension not supported"}
	// ErrAuthzID: the client named an authorization identity ("a="); only
	// authenticating as oneself is supported.
	ErrAuthzID = &auth.Error{Code: auth.CodeNotAuthorized, Msg: "authorization identity not supported"}
	// ErrUsername: the user name is empty or not printable ASCII. Printable
	// ASCII is the range where SASLprep (RFC 4013) is the identity mapping, so
	// no normalisation table is needed; anything else is refused.
	ErrUsername = &auth.Error{Code: auth.CodeBadUserOrPassword, Msg: "user name is not printable ASCII"}

	// ErrBindingMismatch: client-final "c=" is not the base64 of the gs2
	// header the client sent first (RFC 5802 section 5.1, "c").
	ErrBindingMismatch = &auth.Error{Code: auth.CodeNotAuthorized, Msg: "channel binding value does not match gs2 header"}
	// ErrNonce: client-final "r=" is not the nonce the server sent.
	ErrNonce = &auth.Error{Code: auth.CodeNotAuthorized, Msg: "nonce mismatch"}
	// ErrBadCredentials: the proof is wrong. An unknown user gets this same
	// error, at the same step, so the two cannot be told apart.
	ErrBadCredentials = &auth.Error{Code: auth.CodeBadUserOrPassword, Msg: "bad user name or password"}
	// ErrStoredCredentials: the CredentialStore returned credentials that
	// cannot be used (no salt, iterations < 1, wrong key lengths). This is
	// a configuration error, not the client's.
	ErrStoredCredentials = &auth.Error{Code: auth.CodeUnspecified, Msg: "stored credentials unusable"}

	// Errors of Client, for a client that answers a bad server with
	// DISCONNECT.

	// ErrServerNonce: server-first "r=" does not extend the client's nonce.
	ErrServerNonce = &auth.Error{Code: auth.CodeNotAuthorized, Msg: "server nonce does not extend the client nonce"}
	// ErrIterations: server-first "i=" is outside [minClientIterations,
	// maxClientIterations].
	ErrIterations = &auth.Error{Code: auth.CodeNotAuthorized, Msg: "iteration count out of range"}
	// ErrServerSignature: server-final "v=" is wrong: the server does not
	// know the password's keys.
	ErrServerSignature = &auth.Error{Code: auth.CodeNotAuthorized, Msg: "server signature mismatch"}
	// ErrServerRefused: the server sent server-error ("e=").
	ErrServerRefused = &auth.Error{Code: auth.CodeNotAuthorized, Msg: "server reported an error"}
	// ErrClientState: Client methods called out of order or twice.
	ErrClientState = &auth.Error{Code: auth.CodeProtocol, Msg: "SCRAM client call out of order"}
)
