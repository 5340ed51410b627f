package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// API is a minimal HTTP client of the Aoba REST API, for provisioning and
// the REST mix.
type API struct {
	HTTP *http.Client
}

// NewAPI returns an API client keeping up to conns idle connections per
// server.
func NewAPI(conns int) *API {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        conns * 4,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     30 * time.Second,
	}
	return &API{HTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// StatusError is a non-2xx answer of the API.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body)
}

// Do sends one JSON request and decodes a 2xx JSON answer into out (when
// non-nil). It returns the status and a *StatusError for a non-2xx answer,
// or the transport error.
func (a *API) Do(ctx context.Context, base *url.URL, method, path, token string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base.String()+path, body)
	if err != nil {
		return 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return resp.StatusCode, &StatusError{Status: resp.StatusCode, Body: string(b)}
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, err
	}
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(out)
}

// User is a provisioned account with a valid token.
type User struct {
	ID       string
	Username string
	Token    string
	Pod      int // index of the server it was provisioned on and connects to
}

// Provision registers n users named prefix-0..n-1 (spread over the servers
// round-robin), logs each in and returns them in order. At most conc
// requests run at once. It returns the first error met.
func Provision(ctx context.Context, api *API, c *Common, n int, progress func(done int)) ([]*User, error) {
	if n > MaxUsers {
		return nil, fmt.Errorf("%d users asked, the cap is %d", n, MaxUsers)
	}
	users := make([]*User, n)
	var (
		wg       sync.WaitGroup
		once     sync.Once
		first    error
		done     atomic.Int64
		next     atomic.Int64
		ctx2, c2 = context.WithCancel(ctx)
	)
	defer c2()
	fail := func(err error) { once.Do(func() { first = err; c2() }) }
	for w := 0; w < c.Conc && w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx2.Err() != nil {
					return
				}
				pod := i % len(c.Addrs)
				u, err := provisionOne(ctx2, api, c.Addrs[pod], fmt.Sprintf("%s-%d", c.Prefix, i), c.Password)
				if err != nil {
					fail(fmt.Errorf("provisioning user %d: %w", i, err))
					return
				}
				u.Pod = pod
				users[i] = u
				if d := done.Add(1); progress != nil && d%500 == 0 {
					progress(int(d))
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return users, nil
}

func provisionOne(ctx context.Context, api *API, base *url.URL, name, password string) (*User, error) {
	cred := map[string]string{"username": name, "password": password}
	var reg struct {
		ID string `json:"id"`
	}
	if _, err := api.Do(ctx, base, "POST", "/api/auth/register", "", cred, &reg); err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	var login struct {
		Token string `json:"token"`
		User  struct {
			ID       string `json:"id"`
			Username string `json:"username"`
		} `json:"user"`
	}
	if _, err := api.Do(ctx, base, "POST", "/api/auth/login", "", cred, &login); err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	if login.Token == "" {
		return nil, fmt.Errorf("login: no token in the answer")
	}
	id := login.User.ID
	if id == "" {
		id = reg.ID
	}
	return &User{ID: id, Username: name, Token: login.Token}, nil
}

// CreateGroup creates a group owned by owner and adds members directly
// (POST /api/groups/{id}/members as the owner), at most conc at once. It
// returns the group id, or the first error met.
func CreateGroup(ctx context.Context, api *API, c *Common, owner *User, members []*User, name string) (string, error) {
	base := c.Addrs[owner.Pod]
	var created struct {
		Group struct {
			ID string `json:"group_id"`
		} `json:"group"`
	}
	if _, err := api.Do(ctx, base, "POST", "/api/groups", owner.Token, map[string]any{"name": name}, &created); err != nil {
		return "", fmt.Errorf("create group: %w", err)
	}
	gid := created.Group.ID
	if gid == "" {
		return "", fmt.Errorf("create group: no group_id in the answer")
	}
	sem := make(chan struct{}, c.Conc)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, m := range members {
		if m == owner {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(m *User) {
			defer wg.Done()
			defer func() { <-sem }()
			body := map[string]string{"username": m.Username, "role": "member"}
			if _, err := api.Do(ctx, base, "POST", "/api/groups/"+gid+"/members", owner.Token, body, nil); err != nil {
				once.Do(func() { first = fmt.Errorf("add member %s: %w", m.Username, err) })
			}
		}(m)
	}
	wg.Wait()
	return gid, first
}

// ServerRSS reads process_resident_memory_bytes from base's /metrics. It
// returns an error when the endpoint or the metric is missing.
func ServerRSS(ctx context.Context, api *API, base *url.URL) (float64, error) {
	return ServerMetric(ctx, api, base, "process_resident_memory_bytes")
}

// ServersCPU returns the sum of process_cpu_seconds_total over the servers,
// or the first error met reading them.
func ServersCPU(ctx context.Context, api *API, c *Common) (float64, error) {
	var sum float64
	for _, a := range c.Addrs {
		v, err := ServerMetric(ctx, api, a, "process_cpu_seconds_total")
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

// ServerMetric reads the unlabelled sample name from base's /metrics. It
// returns an error when the endpoint or the metric is missing.
func ServerMetric(ctx context.Context, api *API, base *url.URL, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", base.String()+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := api.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, &StatusError{Status: resp.StatusCode}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return 0, err
	}
	return MetricValue(string(b), name)
}
