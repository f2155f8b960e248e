package auth

import (
	"context"
	"errors"
)

// Login is what a client presents when it connects: the CONNECT packet's
// client identifier, user name and password, and what the transport
// learnt about it. The broker builds one per CONNECT and does not keep it
// after Authenticate returns; an Authenticator that keeps any of it (a
// cache) must copy.
type Login struct {
	ClientID string
	// Username and Password are the CONNECT fields; HasUsername and
	// HasPassword say whether the flags were set (an empty user name is
	// not the same as none).
	Username    string
	Password    []byte
	HasUsername bool
	HasPassword bool
	// Remote is the peer's address, "host:port".
	Remote string
	// Listener names the transport: "tcp", "tls", "ws" or "wss".
	Listener string
	// CertIdentity is the identity taken from a verified client
	// certificate (its Common Name or first Subject Alternative Name, as
	// configured), or "" when the client sent none. When it is set the
	// broker uses it as the user name: the certificate is the credential.
	CertIdentity string
}

// Authenticator decides whether a client may connect.
//
// Authenticate may block — a deliberately slow password hash, a network
// round trip — so the broker never calls it on an event loop: it runs on
// a bounded pool of goroutines, and the client's CONNACK waits for it. It
// must honour ctx's deadline and be safe for concurrent use.
//
// It returns nil when the client is accepted; ErrUnknownUser when this
// authenticator has no opinion about the user, so that the next one in a
// Chain is asked; any other *Error refuses the client with its Code
// (CodeBadUserOrPassword, CodeNotAuthorized, CodeServerUnavailable).
type Authenticator interface {
	Authenticate(ctx context.Context, l *Login) error
}

// Errors of Authenticators, one per cause. Compare with ==.
var (
	// ErrUnknownUser: the authenticator does not know this user. A Chain
	// asks the next one; at the end of a chain it refuses with 0x86.
	ErrUnknownUser = &Error{CodeBadUserOrPassword, "unknown user"}
	// ErrBadPassword: the user is known and the password is wrong, or
	// missing.
	ErrBadPassword = &Error{CodeBadUserOrPassword, "bad password"}
	// ErrDenied: the credentials were checked and the client is not
	// allowed to connect (a back end said no, an anonymous client where
	// anonymous access is off).
	ErrDenied = &Error{CodeNotAuthorized, "not authorized"}
	// ErrBackend: the authentication back end could not answer in time
	// or answered something unusable. The client may retry later.
	ErrBackend = &Error{CodeServerUnavailable, "authentication back end unavailable"}
)

// Chain asks each authenticator in turn and returns the first answer that
// is not ErrUnknownUser; if all say ErrUnknownUser, so does the chain. It
// is safe for concurrent use when its members are.
func Chain(as ...Authenticator) Authenticator {
	if len(as) == 1 {
		return as[0]
	}
	return chain(append([]Authenticator(nil), as...))
}

type chain []Authenticator

func (c chain) Authenticate(ctx context.Context, l *Login) error {
	for _, a := range c {
		err := a.Authenticate(ctx, l)
		if !errors.Is(err, ErrUnknownUser) {
			return err
		}
	}
	return ErrUnknownUser
}

// Authorizer says what an authenticated client may do with topics.
type Authorizer interface {
	// For returns the permissions of a client that authenticated as
	// username ("" when anonymous) with client identifier clientID. The
	// broker calls it once per connection, on an event loop: it must not
	// block, and must be safe for concurrent use.
	For(username, clientID string) Permissions
}

// Permissions are one connection's topic rights. The broker calls them on
// its hot path, from the connection's event loop and from router workers
// delivering to it, so they must be safe for concurrent use, must not
// block, and should not allocate. topic and filter are valid only during
// the call.
type Permissions interface {
	// CanPublish reports whether the client may publish to topic,
	// retained or not, and whether its will may be published there.
	CanPublish(topic []byte) bool
	// CanSubscribe reports whether the client may subscribe to filter (a
	// shared subscription's filter without its $share/group/ prefix). When
	// ok but some topics matching filter are denied to the client,
	// checkEach is true: then every message for it, retained ones
	// included, must pass CanReceive.
	CanSubscribe(filter []byte) (ok, checkEach bool)
	// CanReceive reports whether a message published to topic may be
	// delivered to the client.
	CanReceive(topic []byte) bool
}
