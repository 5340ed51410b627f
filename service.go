package aoba

import (
	"context"
	"log/slog"
	"strings"
	"time"
)

// ServiceConfig holds the Service's dependencies and settings.
type ServiceConfig struct {
	Store    Store
	Broker   Broker
	Presence PresenceRegistry
	// Sockets, when set, counts each user's open sockets for the admin
	// API (nil: counts are null).
	Sockets SocketRegistry
	// Sessions caches session state in front of the store (Redis, or
	// memory for one pod).
	Sessions SessionCache
	// Tickets keeps the single-use WebSocket tickets.
	Tickets TicketStore
	// Limiter holds the failed-login budgets.
	Limiter RateLimiter
	// LoginFailures is the failed-login budget of one account per
	// LoginFailureWindow (DefaultLoginFailures when zero).
	LoginFailures int
	Tokens        TokenAuthority
	Hasher        PasswordHasher
	// Domain is the XMPP domain reported in user metadata.
	Domain string
	// TokenTTL is the lifetime of session tokens; user-wide revocations
	// last that long.
	TokenTTL time.Duration
	// Offline, when not nil, is told of every stored message, to announce
	// it to the recipients who are offline (webhooks); nil means off.
	Offline OfflineNotifier
	Logger  *slog.Logger
}

// Service holds the rules of the product: validation, permissions, and the
// order of storage and publication. The REST handlers and the WebSocket
// frames both call it, so each rule is written once.
type Service struct {
	store    Store
	broker   Broker
	presence PresenceRegistry
	sockets  SocketRegistry
	sessions SessionCache
	tickets  TicketStore
	limiter  RateLimiter
	failures int
	tokens   TokenAuthority
	hasher   PasswordHasher
	domain   string
	tokenTTL time.Duration
	offline  OfflineNotifier
	log      *slog.Logger
	dir      directoryCache // users and blocks of the send path, once CacheDirectory armed it
	members  memberCache    // memberships of the send path, armed with dir
}

// NewService returns a Service on the given dependencies.
func NewService(c ServiceConfig) *Service {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Domain == "" {
		c.Domain = "aoba.chat"
	}
	if c.LoginFailures <= 0 {
		c.LoginFailures = DefaultLoginFailures
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = 24 * time.Hour
	}
	s := &Service{
		store: c.Store, broker: c.Broker, presence: c.Presence, sessions: c.Sessions,
		tickets: c.Tickets, limiter: c.Limiter, failures: c.LoginFailures, sockets: c.Sockets,
		tokens: c.Tokens, hasher: c.Hasher, domain: c.Domain, tokenTTL: c.TokenTTL, offline: c.Offline, log: c.Logger,
	}
	s.store = announcingStore{Store: c.Store, svc: s}
	return s
}

// publish sends pubs through the broker. A failure is logged, not returned:
// the write it announces is already stored, and clients recover it from
// history.
func (s *Service) publish(ctx context.Context, pubs ...Publication) {
	if len(pubs) == 0 {
		return
	}
	if err := s.broker.Publish(ctx, pubs...); err != nil {
		s.log.Warn("publish failed", "topics", len(pubs), "err", err)
	}
}

// publishFrame encodes one frame once and publishes it to the user topics of
// userIDs; exceptConn is left out on the topic of exceptUser.
func (s *Service) publishFrame(ctx context.Context, typ string, data any, userIDs []string, exceptUser, exceptConn string) {
	frame, err := EncodeFrame(typ, "", data)
	if err != nil {
		s.log.Error("encode frame", "type", typ, "err", err)
		return
	}
	pubs := make([]Publication, 0, len(userIDs))
	seen := make(map[string]bool, len(userIDs))
	for _, id := range userIDs {
		if seen[id] {
			continue
		}
		seen[id] = true
		env := Envelope{Frame: frame}
		if id == exceptUser {
			env.ExceptConn = exceptConn
		}
		pubs = append(pubs, Publication{Topic: UserTopic(id), Envelope: env})
	}
	s.publish(ctx, pubs...)
}

// publishGroupFrame encodes one frame once and publishes it once on the
// group's topic: every pod fans it out to the local sockets of the group's
// members, except the socket exceptConn and the sockets of exceptUser.
func (s *Service) publishGroupFrame(ctx context.Context, typ string, data any, groupID, exceptUser, exceptConn string) {
	frame, err := EncodeFrame(typ, "", data)
	if err != nil {
		s.log.Error("encode frame", "type", typ, "err", err)
		return
	}
	s.publish(ctx, Publication{Topic: GroupTopic(groupID), Envelope: Envelope{Frame: frame, ExceptUser: exceptUser, ExceptConn: exceptConn}})
}

// publishMembership tells the pods holding sockets of userIDs that these
// users joined (join) or left the group, so that they subscribe to or
// unsubscribe from its topic. It is published before the `group` event
// that announces the change, on the same user topics.
func (s *Service) publishMembership(ctx context.Context, groupID string, join bool, userIDs ...string) {
	pubs := make([]Publication, 0, len(userIDs))
	for _, id := range uniq(userIDs) {
		env := Envelope{Leave: groupID}
		if join {
			env = Envelope{Join: groupID}
		}
		pubs = append(pubs, Publication{Topic: UserTopic(id), Envelope: env})
	}
	s.publish(ctx, pubs...)
}

// UserGroupIDs returns the ids of the groups userID is a member of, oldest
// membership first: a pod asks when the user's first socket opens, to
// subscribe to their group topics. It returns the store's error.
func (s *Service) UserGroupIDs(ctx context.Context, userID string) ([]string, error) {
	ms, err := s.store.FindMembershipsByUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.GroupID
	}
	return ids, nil
}

// closeSessions asks every pod to close the user's sockets selected by o.
func (s *Service) closeSessions(ctx context.Context, userID string, o CloseOrder) {
	s.publish(ctx, Publication{Topic: UserTopic(userID), Envelope: Envelope{Close: &o}})
}

// usernames returns the current usernames of ids, keyed by id.
func (s *Service) usernames(ctx context.Context, ids []string) (map[string]string, error) {
	users, err := s.store.FindUsersByIDs(ctx, uniq(ids))
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(users))
	for _, u := range users {
		m[u.ID] = u.Username
	}
	return m, nil
}

// uniq returns ss without duplicates, in first-seen order.
func uniq(ss []string) []string {
	seen := make(map[string]bool, len(ss))
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// uniqFold returns ss without case-insensitive duplicates, in first-seen
// order.
func uniqFold(ss []string) []string {
	seen := make(map[string]bool, len(ss))
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		k := strings.ToLower(s)
		if !seen[k] {
			seen[k] = true
			out = append(out, s)
		}
	}
	return out
}

// Ping checks the store and the broker; it returns the first failure.
func (s *Service) Ping(ctx context.Context) error {
	if err := s.store.Ping(ctx); err != nil {
		return err
	}
	return s.broker.Ping(ctx)
}
