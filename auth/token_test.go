package auth_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/aoba-chat/aoba"
	"github.com/aoba-chat/aoba/auth"
	"github.com/golang-jwt/jwt/v5"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func mustTokens(t *testing.T) *auth.Tokens {
	t.Helper()
	tk, err := auth.NewTokens(secret, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestNewTokens(t *testing.T) {
	t.Run("ErrShortSecret", func(t *testing.T) {
		if _, err := auth.NewTokens(secret[:31], time.Hour); err == nil {
			t.Fatal("a 31-byte secret was accepted")
		}
	})
	t.Run("ErrTTL", func(t *testing.T) {
		if _, err := auth.NewTokens(secret, 0); err == nil {
			t.Fatal("a zero lifetime was accepted")
		}
	})
}

func TestTokens(t *testing.T) {
	tk := mustTokens(t)
	t.Run("OK", func(t *testing.T) {
		token, issued, err := tk.Issue("u1", "s1")
		if err != nil {
			t.Fatal(err)
		}
		got, err := tk.Verify(token)
		if err != nil {
			t.Fatal(err)
		}
		if got != issued || got.UserID != "u1" || got.SessionID != "s1" || got.TokenID == "" {
			t.Fatalf("claims = %+v, issued %+v", got, issued)
		}
		if !got.IssuedAt.Equal(got.IssuedAt.Truncate(time.Millisecond)) || time.Since(got.IssuedAt) > time.Minute {
			t.Fatalf("IssuedAt = %v", got.IssuedAt)
		}
		if d := got.ExpiresAt.Sub(got.IssuedAt); d < time.Hour-time.Second || d > time.Hour {
			t.Fatalf("lifetime = %v", d)
		}
	})
	t.Run("TokensDiffer", func(t *testing.T) {
		_, a, _ := tk.Issue("u1", "s1")
		_, b, _ := tk.Issue("u1", "s1")
		if a.TokenID == b.TokenID || a.SessionID != b.SessionID {
			t.Fatalf("two tokens of one session: %+v, %+v", a, b)
		}
	})

	sign := func(method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		t.Helper()
		s, err := jwt.NewWithClaims(method, claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	now := time.Now()
	valid := jwt.MapClaims{"sub": "u1", "sid": "s1", "jti": "t1", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	without := func(key string) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range valid {
			if k != key {
				c[k] = v
			}
		}
		return c
	}
	none := sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid)
	good := sign(jwt.SigningMethodHS256, secret, valid)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","sid":"s1","jti":"t1","iat":1,"exp":9999999999}`)) + "." + parts[2]

	for name, token := range map[string]string{
		"ErrEmpty":       "",
		"ErrGarbage":     "not-a-token",
		"ErrHuge":        strings.Repeat("a", 1<<20),
		"ErrAlgNone":     none,
		"ErrHS512":       sign(jwt.SigningMethodHS512, secret, valid),
		"ErrOtherSecret": sign(jwt.SigningMethodHS256, []byte("another secret of at least 32 bytes!!"), valid),
		"ErrExpired":     sign(jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "u1", "sid": "s1", "jti": "t1", "iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()}),
		"ErrNoExpiry":    sign(jwt.SigningMethodHS256, secret, without("exp")),
		"ErrNoSubject":   sign(jwt.SigningMethodHS256, secret, without("sub")),
		"ErrNoSession":   sign(jwt.SigningMethodHS256, secret, without("sid")),
		"ErrNoTokenID":   sign(jwt.SigningMethodHS256, secret, without("jti")),
		"ErrTampered":    tampered,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := tk.Verify(token); aoba.ErrorCode(err) != aoba.EUNAUTHORIZED {
				t.Fatalf("Verify = %v, want EUNAUTHORIZED", err)
			}
		})
	}
	t.Run("ControlHS256Accepted", func(t *testing.T) {
		if _, err := tk.Verify(good); err != nil {
			t.Fatalf("a valid foreign-issued HS256 token was refused: %v", err)
		}
	})
}
