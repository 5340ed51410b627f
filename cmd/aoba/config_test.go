package main_test

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	main "github.com/aoba-chat/aoba/cmd/aoba"
)

// parseOne runs ParseEnv with the single variable name=value.
func parseOne(name, value string) error {
	return main.NewMain().ParseEnv(func(k string) string {
		if k == name {
			return value
		}
		return ""
	})
}

func TestConfigLists(t *testing.T) {
	t.Run("TrustedProxies", func(t *testing.T) {
		if err := parseOne("AOBA_TRUSTED_PROXIES", " 10.0.0.1, 172.28.0.0/16,::1, fd00::/8 "); err != nil {
			t.Fatalf("valid proxies refused: %v", err)
		}
		for _, bad := range []string{"nginx", "10.0.0.1/33", "10.0.0.0/8, 10.0.0.256", "0.0.0.0:80", "*"} {
			err := parseOne("AOBA_TRUSTED_PROXIES", bad)
			if err == nil {
				t.Errorf("AOBA_TRUSTED_PROXIES=%s accepted", bad)
				continue
			}
			if !contains(err.Error(), "AOBA_TRUSTED_PROXIES") {
				t.Errorf("AOBA_TRUSTED_PROXIES=%s: error %q does not name the variable", bad, err)
			}
		}
		// The error names the bad entry, not only the variable.
		if err := parseOne("AOBA_TRUSTED_PROXIES", "10.0.0.1, lb.internal"); err == nil || !contains(err.Error(), `"lb.internal"`) {
			t.Errorf("error %v does not name the bad entry", err)
		}
	})
	t.Run("AllowedOrigins", func(t *testing.T) {
		if err := parseOne("AOBA_ALLOWED_ORIGINS", "https://chat.example.com, http://localhost:8080,https://[::1]:8443,HTTPS://App.Example"); err != nil {
			t.Fatalf("valid origins refused: %v", err)
		}
		for _, bad := range []string{
			"chat.example.com", "https://chat.example.com/", "https://chat.example.com/app", "ftp://chat.example.com",
			"*", "https://", "https://user:pw@chat.example.com", "https://chat.example.com?x=1", "https://chat.example.com#f",
			"https://chat.example.com:0", "https://chat.example.com:99999", "https://chat.example.com:", "null",
		} {
			err := parseOne("AOBA_ALLOWED_ORIGINS", "https://ok.example, "+bad)
			if err == nil {
				t.Errorf("AOBA_ALLOWED_ORIGINS=%s accepted", bad)
				continue
			}
			if !contains(err.Error(), "AOBA_ALLOWED_ORIGINS") || !contains(err.Error(), bad) {
				t.Errorf("AOBA_ALLOWED_ORIGINS=%s: error %q does not name the variable and the value", bad, err)
			}
		}
	})
	t.Run("BadProxyStopsTheServer", func(t *testing.T) {
		e := embeddedEnv(t)
		e["AOBA_TRUSTED_PROXIES"] = "lb"
		var environ []string
		for k, v := range e {
			environ = append(environ, k+"="+v)
		}
		if err := main.NewMain().ParseEnviron(environ); err == nil || !contains(err.Error(), "AOBA_TRUSTED_PROXIES") {
			t.Fatalf("ParseEnviron = %v, want an AOBA_TRUSTED_PROXIES error", err)
		}
	})
}

// TestUnknownVariableWarned proves that an AOBA_* variable no setting reads
// is logged as a warning at start, by name and without its value.
func TestUnknownVariableWarned(t *testing.T) {
	e := embeddedEnv(t)
	environ := []string{"AOBA_FOO=hunter2-secret-value", "AOBA_RATE_STANDRAD=5", "HOME=/root", "AOBAX=1"}
	for k, v := range e {
		environ = append(environ, k+"="+v)
	}
	m := main.NewMain()
	logs := &logBuffer{}
	m.LogOutput = logs
	if err := m.ParseEnviron(environ); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		_ = m.Close()
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	warned := map[string]bool{}
	for _, line := range strings.Split(logs.String(), "\n") {
		var rec struct {
			Level string `json:"level"`
			Name  string `json:"name"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Level == "WARN" && rec.Name != "" {
			warned[rec.Name] = true
		}
	}
	if !warned["AOBA_FOO"] || !warned["AOBA_RATE_STANDRAD"] || len(warned) != 2 {
		t.Fatalf("warned about %v, want AOBA_FOO and AOBA_RATE_STANDRAD only; logs:\n%s", warned, logs)
	}
	if contains(logs.String(), "hunter2") {
		t.Fatal("the value of an unknown variable reached the log")
	}
}

// TestEnvVarsDocumented proves that the one list of variable names
// (main.EnvVars) matches the doc comment of main.go and the README's table.
func TestEnvVarsDocumented(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc, _, _ := strings.Cut(string(src), "package main")
	inDoc := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^//\s+(AOBA_[A-Z0-9_]+)\s`).FindAllStringSubmatch(doc, -1) {
		inDoc[m[1]] = true
	}
	inReadme := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(AOBA_[A-Z0-9_]+)`").FindAllStringSubmatch(string(readme), -1) {
		inReadme[m[1]] = true
	}
	known := map[string]bool{}
	for _, name := range main.EnvVars {
		known[name] = true
		if !inDoc[name] {
			t.Errorf("%s is missing from the doc comment of main.go", name)
		}
		if !inReadme[name] {
			t.Errorf("%s is missing from the README's configuration table", name)
		}
	}
	for name := range inDoc {
		if !known[name] {
			t.Errorf("the doc comment of main.go lists %s, which is not in EnvVars", name)
		}
	}
	for name := range inReadme {
		if !known[name] {
			t.Errorf("the README lists %s, which is not in EnvVars", name)
		}
	}
}

// TestComposeConfig proves that docker-compose.yml gives the pods settings
// ParseEnv accepts, with known names, and trusts only the load balancer's
// fixed address as a proxy.
func TestComposeConfig(t *testing.T) {
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	compose := string(b)
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(AOBA_[A-Z0-9_]+):\s*(.*)$`).FindAllStringSubmatch(compose, -1) {
		vars[m[1]] = strings.Trim(strings.TrimSpace(m[2]), `"'`)
	}
	known := map[string]bool{}
	for _, name := range main.EnvVars {
		known[name] = true
	}
	for name := range vars {
		if !known[name] {
			t.Errorf("docker-compose.yml sets %s, which no setting reads", name)
		}
	}
	vars["AOBA_JWT_SECRET"] = testSecret // ${AOBA_JWT_SECRET:?...} in the file
	for name, v := range vars {
		// ${NAME:-default} is default when NAME is unset.
		if m := regexp.MustCompile(`^\$\{[A-Z0-9_]+:-(.*)\}$`).FindStringSubmatch(v); m != nil {
			vars[name] = m[1]
		}
	}
	if err := main.NewMain().ParseEnv(func(k string) string { return vars[k] }); err != nil {
		t.Fatalf("docker-compose.yml's settings: %v", err)
	}
	lb := regexp.MustCompile(`ipv4_address:\s*(\S+)`).FindStringSubmatch(compose)
	if lb == nil {
		t.Fatal("docker-compose.yml gives the load balancer no fixed address")
	}
	if vars["AOBA_TRUSTED_PROXIES"] != lb[1] {
		t.Fatalf("AOBA_TRUSTED_PROXIES = %q, want only the load balancer's address %s", vars["AOBA_TRUSTED_PROXIES"], lb[1])
	}
}

// TestRedisTopologyConfig proves that the Redis settings are checked at
// start with errors that name the variables.
func TestRedisTopologyConfig(t *testing.T) {
	parse := func(vars map[string]string) error {
		return main.NewMain().ParseEnv(func(k string) string { return vars[k] })
	}
	for _, ok := range []map[string]string{
		{"AOBA_REDIS_URL": "redis://redis:6379/0"},
		{"AOBA_REDIS_SENTINELS": "s1:26379, s2:26379,s3:26379", "AOBA_REDIS_MASTER": "aoba", "AOBA_REDIS_PASSWORD": "pw", "AOBA_REDIS_SENTINEL_PASSWORD": "spw"},
		{"AOBA_REDIS_CLUSTER": "10.0.0.1:7000,[::1]:7001", "AOBA_REDIS_USERNAME": "aoba", "AOBA_REDIS_PASSWORD": "pw"},
	} {
		if err := parse(ok); err != nil {
			t.Errorf("%v refused: %v", ok, err)
		}
	}
	for _, bad := range []struct {
		vars map[string]string
		want []string // in the error
	}{
		{map[string]string{"AOBA_REDIS_URL": "redis://r:6379", "AOBA_REDIS_CLUSTER": "r:7000"}, []string{"AOBA_REDIS_URL", "AOBA_REDIS_CLUSTER", "only one"}},
		{map[string]string{"AOBA_REDIS_SENTINELS": "s:26379", "AOBA_REDIS_CLUSTER": "r:7000"}, []string{"only one"}},
		{map[string]string{"AOBA_REDIS_SENTINELS": "s:26379"}, []string{"AOBA_REDIS_MASTER", "required"}},
		{map[string]string{"AOBA_REDIS_MASTER": "aoba"}, []string{"AOBA_REDIS_SENTINELS"}},
		{map[string]string{"AOBA_REDIS_SENTINELS": "s1", "AOBA_REDIS_MASTER": "aoba"}, []string{"AOBA_REDIS_SENTINELS", `"s1"`, "host:port"}},
		{map[string]string{"AOBA_REDIS_CLUSTER": "r:7000,r:99999"}, []string{"AOBA_REDIS_CLUSTER", `"r:99999"`, "port"}},
		{map[string]string{"AOBA_REDIS_URL": "http://r:6379"}, []string{"AOBA_REDIS_URL"}},
		{map[string]string{"AOBA_REDIS_URL": "redis://r:6379", "AOBA_REDIS_PASSWORD": "pw"}, []string{"AOBA_REDIS_PASSWORD", "URL"}},
		{map[string]string{"AOBA_REDIS_CLUSTER": "r:7000", "AOBA_REDIS_PREFIX": "{aoba}:"}, []string{"AOBA_REDIS_PREFIX", "{"}},
	} {
		err := parse(bad.vars)
		if err == nil {
			t.Errorf("%v accepted", bad.vars)
			continue
		}
		for _, w := range bad.want {
			if !contains(err.Error(), w) {
				t.Errorf("%v: error %q does not say %q", bad.vars, err, w)
			}
		}
	}
}
