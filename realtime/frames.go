package realtime

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/aoba-chat/aoba"
)

// Client-to-server frame types.
const (
	FramePing          = "ping"
	FrameMessageSend   = "message.send"
	FrameTyping        = "typing"
	FramePresenceSub   = "presence.subscribe"
	FramePresenceUnsub = "presence.unsubscribe"
	FrameRead          = "read"
)

// ClientFrameTypes lists every client-to-server frame type handle serves,
// for the tests that hold the AsyncAPI document (api/asyncapi.json) to the
// code.
var ClientFrameTypes = []string{FramePing, FrameMessageSend, FrameTyping, FramePresenceSub, FramePresenceUnsub, FrameRead}

// frameTimeout bounds the handling of one client frame.
const frameTimeout = 10 * time.Second

// errorData is the data of an `error` frame and the body of a refused
// upgrade: the HTTP status text, a sentence, the machine code (the domain
// error code: invalid, unauthorized, forbidden, not_found, conflict,
// rate_limited, unavailable...) and, for rate_limited, the seconds to wait.
type errorData struct {
	Error      string `json:"error"`
	Message    string `json:"message"`
	Code       string `json:"code,omitempty"`
	RetryAfter int    `json:"retry_after,omitempty"`
}

// subscribeResult is the data of the ack of a presence.subscribe: the
// names or ids asked for that match no user (each known one gets a
// `presence` event instead).
type subscribeResult struct {
	Unknown []string `json:"unknown"`
}

type typingData struct {
	To    string           `json:"to"`
	Type  aoba.MessageType `json:"type"`
	State string           `json:"state"`
}

type readData struct {
	Conversation string `json:"conversation"`
	UpTo         string `json:"up_to"`
}

// read counts the frame against the user's standard budget, then moves the
// read marker (aoba.Service.MarkRead) and returns the conversation. It
// returns an ERATELIMIT error over the budget and the errors of MarkRead.
func (c *conn) read(ctx context.Context, f aoba.Frame) (*aoba.ConversationView, error) {
	var in readData
	if err := decode(f.Data, &in); err != nil {
		return nil, err
	}
	if c.n.limiter != nil {
		if _, err := aoba.Limit(ctx, c.n.limiter, aoba.UserRateKey(aoba.ClassStandard, c.claims.UserID), c.n.cfg.RateStandard); err != nil {
			return nil, err
		}
	}
	return c.n.svc.MarkRead(ctx, c.claims, in.Conversation, in.UpTo)
}

type presenceData struct {
	Usernames []string `json:"usernames"`
	UserIDs   []string `json:"userIds"`
}

// sendError answers frame id with an `error` frame for err; internal errors
// are logged and reported without details.
func (c *conn) sendError(id string, err error) {
	code := aoba.ErrorCode(err)
	status := aoba.ErrorStatus(code)
	if code == aoba.EINTERNAL {
		c.n.log.Error("realtime: frame failed", "user", c.claims.UserID, "err", err)
	}
	e := errorData{Error: http.StatusText(status), Message: aoba.ErrorMessage(err), Code: code}
	if d, ok := aoba.RetryAfter(err); ok {
		e.RetryAfter = max(1, int(math.Ceil(d.Seconds())))
	}
	c.send(aoba.FrameError, id, e)
}

// handle serves one frame from the client. Every frame with an id gets
// exactly one reply with that id: `pong` for a ping, `ack` (with the result
// as data where the frame has one) or `error`. A frame without an id gets
// an `error` when it fails and nothing when it succeeds.
func (c *conn) handle(typ int, data []byte) {
	if typ != websocket.TextMessage {
		c.sendError("", aoba.Errorf(aoba.EINVALID, "Frames must be JSON text frames."))
		return
	}
	var f aoba.Frame
	if err := json.Unmarshal(data, &f); err != nil {
		c.sendError("", aoba.Errorf(aoba.EINVALID, "Frame is not a valid JSON object."))
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, frameTimeout)
	defer cancel()
	var err error
	switch f.Type {
	case FramePing:
		if b, err := json.Marshal(aoba.Frame{Type: aoba.FramePong, ID: f.ID}); err == nil {
			c.enqueue(&item{frame: b, at: time.Now()})
		}
	case FrameMessageSend:
		if err = c.messageSend(ctx, f); err != nil {
			c.sendError(f.ID, err)
		}
	case FrameTyping:
		c.reply(f.ID, nil, c.typing(ctx, f))
	case FramePresenceSub:
		var res *subscribeResult
		res, err = c.presenceSubscribe(ctx, f)
		c.reply(f.ID, res, err)
	case FramePresenceUnsub:
		c.reply(f.ID, nil, c.presenceUnsubscribe(f))
	case FrameRead:
		var v *aoba.ConversationView
		v, err = c.read(ctx, f)
		c.reply(f.ID, v, err)
	default:
		c.sendError(f.ID, aoba.Errorf(aoba.EINVALID, "Unknown frame type %q.", f.Type))
	}
}

// reply answers frame id: an `error` for err, else an `ack` with data
// (none when nil) when the frame has an id.
func (c *conn) reply(id string, data any, err error) {
	switch {
	case err != nil:
		c.sendError(id, err)
	case id != "" && data == nil:
		c.send(aoba.FrameAck, id, struct{}{})
	case id != "":
		c.send(aoba.FrameAck, id, data)
	}
}

// decode unmarshals frame data, returning EINVALID for missing or
// malformed data.
func decode(raw json.RawMessage, v any) error {
	if len(raw) == 0 || json.Unmarshal(raw, v) != nil {
		return aoba.Errorf(aoba.EINVALID, "Frame data is missing or malformed.")
	}
	return nil
}

// messageSend counts the frame against the sender's standard budget, then
// sends the message and acknowledges it with the stored message: for a
// client_id the sender already used, the message first stored with it
// (aoba.Service.SendMessage).
func (c *conn) messageSend(ctx context.Context, f aoba.Frame) error {
	var in aoba.SendInput
	if err := decode(f.Data, &in); err != nil {
		return err
	}
	if c.n.limiter != nil {
		if _, err := aoba.Limit(ctx, c.n.limiter, aoba.UserRateKey(aoba.ClassStandard, c.claims.UserID), c.n.cfg.RateStandard); err != nil {
			return err
		}
	}
	m, err := c.n.svc.SendMessage(ctx, c.claims, in, c.id)
	if err != nil {
		return err
	}
	c.send(aoba.FrameAck, f.ID, m)
	return nil
}

// typing counts the frame against the sender's typing budget (the standard
// rate per minute, under its own key: typing does not spend the message
// budget), then relays the notice: the Service relays at most one per
// second per conversation and acknowledges the others without relaying
// them. It returns an ERATELIMIT error over the budget.
func (c *conn) typing(ctx context.Context, f aoba.Frame) error {
	var in typingData
	if err := decode(f.Data, &in); err != nil {
		return err
	}
	if c.n.limiter != nil {
		if _, err := aoba.Limit(ctx, c.n.limiter, aoba.UserRateKey(aoba.ClassTyping, c.claims.UserID), c.n.cfg.RateStandard); err != nil {
			return err
		}
	}
	return c.n.svc.Typing(ctx, c.claims, in.To, in.Type, in.State)
}

// presenceSubscribe counts the frame against the user's batch budget (the
// key of the REST batch routes), then watches the known users among the
// frame's usernames or ids and sends their presence at once, as the user
// sees it (a user who blocks them is offline, with a null lastSeen, and
// their live events skip this socket: see aoba.Service.PresenceChanged).
// The topics
// are subscribed before the presence is read, so no change falls between
// the two. It returns an ERATELIMIT error over the budget and an EINVALID
// error when the user would watch more users than the limit across their
// sockets and pods.
func (c *conn) presenceSubscribe(ctx context.Context, f aoba.Frame) (*subscribeResult, error) {
	if c.n.limiter != nil {
		if _, err := aoba.Limit(ctx, c.n.limiter, aoba.UserRateKey(aoba.ClassBatch, c.claims.UserID), c.n.cfg.RateBatch); err != nil {
			return nil, err
		}
	}
	var in presenceData
	if err := decode(f.Data, &in); err != nil {
		return nil, err
	}
	var (
		found []*aoba.UserPresence
		err   error
	)
	switch {
	case len(in.Usernames) > 0 && len(in.UserIDs) > 0:
		return nil, aoba.Errorf(aoba.EINVALID, "Give usernames or userIds, not both.")
	case len(in.Usernames) > 0:
		found, err = c.n.svc.PresenceByUsernames(ctx, c.claims, in.Usernames)
	default:
		found, err = c.n.svc.PresenceByIDs(ctx, c.claims, in.UserIDs)
	}
	if err != nil {
		return nil, err
	}
	res := &subscribeResult{Unknown: unknownOf(in, found)}
	var fresh []string
	isNew := make(map[string]bool, len(found))
	for _, p := range found {
		if _, ok := c.watched[p.UserID]; !ok && !isNew[p.UserID] {
			isNew[p.UserID] = true
			fresh = append(fresh, p.UserID)
		}
	}
	if c.n.cfg.Watches != nil {
		if _, err := c.n.cfg.Watches.Watch(ctx, c.claims.UserID, fresh); err != nil {
			return nil, err
		}
	} else if len(c.watched)+len(fresh) > MaxWatched {
		return nil, aoba.Errorf(aoba.EINVALID, "A connection may watch at most %d users.", MaxWatched)
	}
	ids := make([]string, 0, len(found))
	for _, p := range found {
		if isNew[p.UserID] {
			c.n.watch(ctx, c, p.UserID)
		}
		if c.watched == nil {
			c.watched = make(map[string]string)
		}
		c.watched[p.UserID] = p.Username
		ids = append(ids, p.UserID)
	}
	if len(ids) == 0 {
		return res, nil
	}
	now, err := c.n.svc.PresenceByIDs(ctx, c.claims, ids)
	if err != nil {
		return nil, err
	}
	for _, p := range now {
		c.send(aoba.FramePresence, "", p)
	}
	return res, nil
}

// unknownOf returns the names (case-insensitively) or ids of in that match
// none of found, in the order asked, each once.
func unknownOf(in presenceData, found []*aoba.UserPresence) []string {
	known := make(map[string]bool, len(found))
	for _, p := range found {
		known[p.UserID] = true
		known[strings.ToLower(p.Username)] = true
	}
	asked := in.UserIDs
	if len(in.Usernames) > 0 {
		asked = in.Usernames
	}
	out := []string{}
	seen := make(map[string]bool, len(asked))
	for _, a := range asked {
		k := strings.ToLower(a)
		if !known[a] && !known[k] && !seen[k] {
			seen[k] = true
			out = append(out, a)
		}
	}
	return out
}

// presenceUnsubscribe stops watching the given users (usernames matched
// case-insensitively among the watched ones); unknown ones are ignored.
func (c *conn) presenceUnsubscribe(f aoba.Frame) error {
	var in presenceData
	if err := decode(f.Data, &in); err != nil {
		return err
	}
	if len(in.Usernames)+len(in.UserIDs) == 0 || len(in.Usernames) > aoba.MaxBatchIDs || len(in.UserIDs) > aoba.MaxBatchIDs {
		return aoba.Errorf(aoba.EINVALID, "usernames or userIds must hold 1 to 100 entries.")
	}
	ctx, cancel := context.WithTimeout(context.Background(), frameTimeout)
	defer cancel()
	drop := make(map[string]bool)
	for _, id := range in.UserIDs {
		drop[id] = true
	}
	names := make(map[string]bool, len(in.Usernames))
	for _, u := range in.Usernames {
		names[strings.ToLower(u)] = true
	}
	var dropped []string
	for id, name := range c.watched {
		if drop[id] || names[strings.ToLower(name)] {
			c.n.unwatch(ctx, c, id)
			delete(c.watched, id)
			dropped = append(dropped, id)
		}
	}
	if c.n.cfg.Watches != nil && len(dropped) > 0 {
		return c.n.cfg.Watches.Unwatch(ctx, c.claims.UserID, dropped)
	}
	return nil
}
