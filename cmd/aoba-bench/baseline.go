package main

import (
	"encoding/json"
	"net"
	"net/url"
	"sync"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
)

// Baseline is a bare Fiber + contrib/websocket broadcast server: no auth,
// storage or hub. Every text frame is acknowledged to its sender
// ({"type":"ack","id":...}) and broadcast unchanged to every other socket,
// each through its own bounded queue and writer, the transport ceiling the
// real server is compared with.
type Baseline struct {
	app  *fiber.App
	ln   net.Listener
	mu   sync.RWMutex
	subs map[*bconn]struct{}
}

type bconn struct {
	c *websocket.Conn
	q chan []byte
}

// StartBaseline starts the baseline on 127.0.0.1:0. It returns the listen
// error.
func StartBaseline() (*Baseline, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &Baseline{ln: ln, subs: map[*bconn]struct{}{}}
	b.app = fiber.New(fiber.Config{DisableStartupMessage: true})
	b.app.Get("/ws", func(c *fiber.Ctx) error {
		if !websocket.IsWebSocketUpgrade(c) {
			return fiber.ErrUpgradeRequired
		}
		return c.Next()
	}, websocket.New(b.serve))
	go b.app.Listener(ln)
	return b, nil
}

// URL returns the baseline's base URL.
func (b *Baseline) URL() *url.URL {
	return &url.URL{Scheme: "http", Host: b.ln.Addr().String()}
}

// Close stops the server; it returns the shutdown error.
func (b *Baseline) Close() error {
	return b.app.Shutdown()
}

func (b *Baseline) serve(c *websocket.Conn) {
	bc := &bconn{c: c, q: make(chan []byte, 1024)}
	b.mu.Lock()
	b.subs[bc] = struct{}{}
	b.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for msg := range bc.q {
			if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
				c.Close()
				for range bc.q {
				}
				return
			}
		}
	}()
	defer func() {
		b.mu.Lock()
		delete(b.subs, bc)
		b.mu.Unlock()
		close(bc.q)
		<-done
	}()
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		var f struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(msg, &f) != nil {
			continue
		}
		ack, _ := json.Marshal(map[string]string{"type": "ack", "id": f.ID})
		b.mu.RLock()
		b.offer(bc, ack)
		for o := range b.subs {
			if o != bc {
				b.offer(o, msg)
			}
		}
		b.mu.RUnlock()
	}
}

// offer queues msg without blocking; a full queue closes that socket, as a
// real server does with a slow reader.
func (b *Baseline) offer(o *bconn, msg []byte) {
	select {
	case o.q <- msg:
	default:
		o.c.Close()
	}
}
