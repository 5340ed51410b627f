// Package auth issues and verifies session tokens (JWT, HS256 only) and
// hashes passwords (argon2id), implementing aoba.TokenAuthority and
// aoba.PasswordHasher.
package auth

import (
	"errors"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/golang-jwt/jwt/v5"
)

// MinSecretLen is the shortest HS256 secret accepted, in bytes.
const MinSecretLen = 32

// maxTokenLen bounds the tokens worth parsing; anything longer is refused
// before any decoding work.
const maxTokenLen = 4096

var _ aoba.TokenAuthority = (*Tokens)(nil)

// Tokens issues and verifies HS256 session tokens.
type Tokens struct {
	secret []byte
	ttl    time.Duration
	parser *jwt.Parser
	now    func() time.Time
}

// claims is the JWT body: sub (user id), sid (session id), jti (token id),
// iat, exp, and iat_ms, the issue time in milliseconds, which user-wide
// revocations compare against.
type claims struct {
	jwt.RegisteredClaims
	SessionID  string `json:"sid"`
	IssuedAtMS int64  `json:"iat_ms"`
}

// NewTokens returns a token authority. It returns an error when the secret
// is shorter than MinSecretLen bytes or ttl is not positive.
func NewTokens(secret []byte, ttl time.Duration) (*Tokens, error) {
	if len(secret) < MinSecretLen {
		return nil, errors.New("auth: the JWT secret must be at least 32 bytes")
	} else if ttl <= 0 {
		return nil, errors.New("auth: the token lifetime must be positive")
	}
	return &Tokens{
		secret: append([]byte(nil), secret...),
		ttl:    ttl,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
		),
		now: time.Now,
	}, nil
}

// TTL returns the lifetime of issued tokens.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Issue returns a signed token of session sessionID of userID, with a new
// token id. It returns an EINTERNAL error when signing fails.
func (t *Tokens) Issue(userID, sessionID string) (string, aoba.Claims, error) {
	now := t.now().UTC().Truncate(time.Millisecond)
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   userID,
			ID:        aoba.NewID(),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
		},
		SessionID:  sessionID,
		IssuedAtMS: now.UnixMilli(),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.secret)
	if err != nil {
		return "", aoba.Claims{}, aoba.Errorf(aoba.EINTERNAL, "sign token: %v", err)
	}
	return s, toClaims(&c), nil
}

// Verify returns the claims of a valid, unexpired HS256 token. Any other
// token gets an EUNAUTHORIZED error.
func (t *Tokens) Verify(token string) (aoba.Claims, error) {
	if token == "" || len(token) > maxTokenLen {
		return aoba.Claims{}, aoba.Errorf(aoba.EUNAUTHORIZED, "Invalid or expired token.")
	}
	var c claims
	_, err := t.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.secret, nil })
	if err != nil || c.Subject == "" || c.ID == "" || c.SessionID == "" || c.IssuedAt == nil {
		return aoba.Claims{}, aoba.Errorf(aoba.EUNAUTHORIZED, "Invalid or expired token.")
	}
	return toClaims(&c), nil
}

// toClaims converts JWT claims to domain claims.
func toClaims(c *claims) aoba.Claims {
	iat := c.IssuedAt.Time.UTC()
	if c.IssuedAtMS > 0 {
		iat = time.UnixMilli(c.IssuedAtMS).UTC()
	}
	return aoba.Claims{UserID: c.Subject, SessionID: c.SessionID, TokenID: c.ID, IssuedAt: iat, ExpiresAt: c.ExpiresAt.Time.UTC()}
}
