package main_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nginxBin is where Debian's nginx-light installs nginx.
const nginxBin = "/usr/sbin/nginx"

// clientAddr is the address the tests' client connects to nginx from: not
// the proxy's own (127.0.0.1), so that logs show which one was taken.
var clientAddr = net.IPv4(127, 0, 0, 5)

// startNginx runs nginx in front of two upstream addresses with the shipped
// deploy/nginx.conf, changed only where it must be: the upstream servers,
// the listen address, and log paths in a temporary directory; edit, when
// not nil, changes it further. The main configuration around it is the one
// of the nginx image (error log at notice). It returns the base URL and the
// directory holding error.log and access.log; nginx stops when the test
// ends.
func startNginx(t *testing.T, upstreams [2]string, edit func(string) string) (string, string) {
	t.Helper()
	if _, err := os.Stat(nginxBin); err != nil {
		t.Skipf("nginx is not installed (%v); scripts/test.sh installs nginx-light", err)
	}
	shipped, err := os.ReadFile("../../deploy/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	port := freePort(t)
	conf := string(shipped)
	for i, name := range []string{"aoba1:8080", "aoba2:8080"} {
		if !strings.Contains(conf, "server "+name+";") {
			t.Fatalf("deploy/nginx.conf has no upstream server %s", name)
		}
		conf = strings.Replace(conf, "server "+name+";", "server "+upstreams[i]+";", 1)
	}
	listen := regexp.MustCompile(`(?m)^(\s*)listen 8080;`)
	if !listen.MatchString(conf) {
		t.Fatal("deploy/nginx.conf does not listen on 8080")
	}
	conf = listen.ReplaceAllString(conf, "${1}listen 127.0.0.1:"+port+";")
	conf = strings.ReplaceAll(conf, "/var/log/nginx/", dir+"/")
	if edit != nil {
		conf = edit(conf)
	}
	if err := os.WriteFile(filepath.Join(dir, "aoba.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers must reach the temporary directory
	}
	mainConf := fmt.Sprintf(`daemon off;
%[2]s
worker_processes 1;
# Two connections per proxied socket: TestDrainBehindNginx holds thousands.
worker_rlimit_nofile 16384;
# A graceful stop waits for open WebSockets no longer than this.
worker_shutdown_timeout 5s;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log notice;
events { worker_connections 8192; }
http {
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    access_log %[1]s/other-access.log;
    include %[1]s/aoba.conf;
}
`, dir, user)
	mainPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(mainPath, []byte(mainConf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginxBin, "-e", filepath.Join(dir, "startup.log"), "-p", dir, "-c", mainPath)
	out := &logBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	addr := "127.0.0.1:" + port
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			break
		}
		select {
		case <-exited:
			startup, _ := os.ReadFile(filepath.Join(dir, "startup.log"))
			errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %s%s%s", out, startup, errLog)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not listen on %s: %s", addr, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "http://" + addr, dir
}

// viaProxy returns a view of s reached through the proxy at base, from
// clientAddr.
func viaProxy(s *server, base string) *server {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: clientAddr}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	return &server{m: s.m, base: base, logs: s.logs, hc: &http.Client{Timeout: 30 * time.Second, Transport: tr}}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string { return "127.0.0.1:" + freePort(t) }

// TestNginx runs the shipped deploy/nginx.conf in front of the real server
// (AOBA_TRUSTED_PROXIES: the proxy's address only) and proves that what a
// client writes in X-Forwarded-For changes nothing, and that a token in the
// query does not reach nginx's logs when a pod is down.
func TestNginx(t *testing.T) {
	s := startMain(t, cheap(env{
		"AOBA_DATA_DIR": t.TempDir(), "AOBA_RATE_STANDARD": "5", "AOBA_TRUSTED_PROXIES": "127.0.0.1/32",
	}))
	live := strings.TrimPrefix(s.base, "http://")

	t.Run("ForwardedForOverwritten", func(t *testing.T) {
		seen := make(chan string, 1)
		rec := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen <- strings.Join(r.Header.Values("X-Forwarded-For"), ",")
		}))
		defer rec.Close()
		up := strings.TrimPrefix(rec.URL, "http://")
		base, _ := startNginx(t, [2]string{up, up}, nil)
		req, _ := http.NewRequest("GET", base+"/health", nil)
		req.Header.Set("X-Forwarded-For", "1.2.3.4, 10.0.0.1")
		res, err := viaProxy(s, base).hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := <-seen; got != clientAddr.String() {
			t.Fatalf("upstream received X-Forwarded-For %q, want exactly the client's address %s", got, clientAddr)
		}
	})

	t.Run("SpoofedForwardedForRateLimited", func(t *testing.T) {
		base, _ := startNginx(t, [2]string{live, live}, nil)
		p := viaProxy(s, base)
		for i := 1; i <= 5; i++ {
			if st := failLogin(t, p, fmt.Sprintf("10.0.0.%d", i)); st != http.StatusUnauthorized {
				t.Fatalf("login %d through nginx: status %d, want 401", i, st)
			}
		}
		if st := failLogin(t, p, "10.0.0.6"); st != http.StatusTooManyRequests {
			t.Fatalf("login 6 through nginx with a new forged X-Forwarded-For: status %d, want 429", st)
		}
		if !contains(s.logs.String(), `"ip":"`+clientAddr.String()+`"`) || contains(s.logs.String(), `"ip":"10.0.0.`) {
			t.Fatal("the server's logs do not name the address nginx saw as the client")
		}
	})

	// A pod that refuses connections: nginx logs the failure, then retries
	// the request on the other pod.
	const token = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXRva2VuLWluLXF1ZXJ5.c2lnbmF0dXJl"
	podDown := func(t *testing.T, edit func(string) string) string {
		base, dir := startNginx(t, [2]string{live, deadAddr(t)}, edit)
		p := viaProxy(s, base)
		for i := 0; i < 4; i++ {
			// The token is not a valid one: the live pod answers 401, or
			// 429 once the client's failed authentications pass its budget.
			if st := p.do(t, "GET", "/api/users/me?token="+token, "", nil).Status; st != http.StatusUnauthorized && st != http.StatusTooManyRequests {
				t.Fatalf("status = %d, want 401 or 429", st)
			}
		}
		var logs strings.Builder
		for _, name := range []string{"error.log", "access.log", "other-access.log"} {
			b, _ := os.ReadFile(filepath.Join(dir, name))
			logs.Write(b)
		}
		return logs.String()
	}
	t.Run("TokenNotLogged", func(t *testing.T) {
		if logs := podDown(t, nil); strings.Contains(logs, token) || strings.Contains(logs, "c2VjcmV0LXRva2VuLWluLXF1ZXJ5") {
			t.Fatalf("nginx logged the token:\n%s", logs)
		}
	})
	t.Run("ControlErrorLevelLogsToken", func(t *testing.T) {
		// Without the shipped error_log line the same failure writes the
		// request line, token included: the test above exercises it.
		crit := regexp.MustCompile(`(?m)^error_log .* crit;$`)
		logs := podDown(t, func(conf string) string {
			if !crit.MatchString(conf) {
				t.Fatal("deploy/nginx.conf has no error_log at crit")
			}
			return crit.ReplaceAllString(conf, "")
		})
		if !strings.Contains(logs, token) {
			t.Fatalf("a failed upstream did not log the request line; the pod-down scenario is not exercised:\n%s", logs)
		}
	})
}
