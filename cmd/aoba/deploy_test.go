package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	main "github.com/aoba-chat/aoba/cmd/aoba"
	"github.com/aoba-chat/aoba/hub"
	"github.com/aoba-chat/aoba/realtime"
	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v4"
)

// The drain of a stopping pod, as the deploy files must allow for it: the
// defaults of AOBA_DRAIN_DELAY, AOBA_DRAIN_SPREAD and AOBA_START_TIMEOUT
// when a file does not set them, and the time Close then gives requests
// and webhooks.
const (
	defaultDrainDelay   = 5 * time.Second
	defaultDrainSpread  = 10 * time.Second
	defaultStartTimeout = time.Minute
	shutdownGrace       = 10 * time.Second
)

// repoFile returns the path of a file of the repository.
func repoFile(name string) string { return filepath.Join("..", "..", name) }

// yamlDocs returns every document of the YAML file path, each converted
// to JSON so that it decodes into the structs below by their json tags.
func yamlDocs(t *testing.T, path string) []json.RawMessage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var docs []json.RawMessage
	dec := yaml.NewDecoder(f)
	for {
		var v any
		if err := dec.Decode(&v); errors.Is(err, io.EOF) {
			return docs
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if v == nil {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		docs = append(docs, b)
	}
}

// durationEnv returns the duration an env entry sets, or def.
func durationEnv(t *testing.T, env map[string]string, name string, def time.Duration) time.Duration {
	t.Helper()
	v, ok := env[name]
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s = %q: %v", name, v, err)
	}
	return d
}

// k8s shapes, as much of them as the checks read.
type (
	k8sObject struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	k8sProbe struct {
		HTTPGet *struct {
			Path string `json:"path"`
			Port any    `json:"port"`
		} `json:"httpGet"`
		PeriodSeconds    int `json:"periodSeconds"`
		FailureThreshold int `json:"failureThreshold"`
	}
	k8sContainer struct {
		Name  string `json:"name"`
		Image string `json:"image"`
		Ports []struct {
			Name          string `json:"name"`
			ContainerPort int    `json:"containerPort"`
		} `json:"ports"`
		Env []struct {
			Name      string `json:"name"`
			Value     string `json:"value"`
			ValueFrom *struct {
				SecretKeyRef *struct {
					Name string `json:"name"`
					Key  string `json:"key"`
				} `json:"secretKeyRef"`
			} `json:"valueFrom"`
		} `json:"env"`
		StartupProbe   *k8sProbe `json:"startupProbe"`
		LivenessProbe  *k8sProbe `json:"livenessProbe"`
		ReadinessProbe *k8sProbe `json:"readinessProbe"`
	}
	k8sDeployment struct {
		Spec struct {
			Replicas int `json:"replicas"`
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			Template struct {
				Metadata struct {
					Labels map[string]string `json:"labels"`
				} `json:"metadata"`
				Spec struct {
					TerminationGracePeriodSeconds *int           `json:"terminationGracePeriodSeconds"`
					Containers                    []k8sContainer `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	k8sService struct {
		Spec struct {
			Selector map[string]string `json:"selector"`
			Ports    []struct {
				Name       string `json:"name"`
				Port       int    `json:"port"`
				TargetPort any    `json:"targetPort"`
			} `json:"ports"`
		} `json:"spec"`
	}
	k8sPDB struct {
		Spec struct {
			MaxUnavailable any `json:"maxUnavailable"`
			Selector       struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
		} `json:"spec"`
	}
	k8sIngress struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
		Spec struct {
			Rules []struct {
				HTTP struct {
					Paths []struct {
						Path    string `json:"path"`
						Backend struct {
							Service struct {
								Name string `json:"name"`
								Port struct {
									Name   string `json:"name"`
									Number int    `json:"number"`
								} `json:"port"`
							} `json:"service"`
						} `json:"backend"`
					} `json:"paths"`
				} `json:"http"`
			} `json:"rules"`
		} `json:"spec"`
	}
)

// matches reports whether labels has every entry of selector (and
// selector is not empty).
func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

// routeSet returns "METHOD path" of every route a server with the admin
// API registers, in OpenAPI's {param} form.
func routeSet(t *testing.T) map[string]bool {
	t.Helper()
	e := embeddedEnv(t)
	e["AOBA_ADMIN_TOKEN"] = adminToken
	s := startMain(t, e)
	out := map[string]bool{}
	for _, r := range s.m.Server().App().GetRoutes(true) {
		path := r.Path
		for _, p := range r.Params {
			path = strings.Replace(path, ":"+p, "{"+p+"}", 1)
		}
		out[r.Method+" "+path] = true
	}
	return out
}

// TestDeployKubernetes parses deploy/k8s and checks that it fits the
// server: the probes ask routes that exist (liveness one that no
// dependency can fail), readiness notices a drain within its delay, the
// termination grace covers the drain, start-up may retry as long as the
// server does, the settings are ones the server reads and accepts, and the
// Service, PodDisruptionBudget and Ingress select the Deployment's pods.
func TestDeployKubernetes(t *testing.T) {
	dir := repoFile("deploy/k8s")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	objs := map[string][]json.RawMessage{}
	var kustomize struct {
		Resources []string `json:"resources"`
	}
	for _, f := range files {
		for _, doc := range yamlDocs(t, f) {
			var o k8sObject
			if err := json.Unmarshal(doc, &o); err != nil {
				t.Fatal(err)
			}
			if o.Kind == "Kustomization" {
				if err := json.Unmarshal(doc, &kustomize); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
				t.Fatalf("%s: a document without apiVersion, kind or name", f)
			}
			objs[o.Kind] = append(objs[o.Kind], doc)
		}
	}
	t.Run("KustomizationListsEveryManifest", func(t *testing.T) {
		var want []string
		for _, f := range files {
			if base := filepath.Base(f); base != "kustomization.yaml" {
				want = append(want, base)
			}
		}
		got := slices.Clone(kustomize.Resources)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("kustomization resources %v, want %v", got, want)
		}
	})
	if len(objs["Deployment"]) != 1 || len(objs["Service"]) != 1 || len(objs["PodDisruptionBudget"]) != 1 || len(objs["Ingress"]) == 0 {
		t.Fatalf("want one Deployment, Service and PodDisruptionBudget and an Ingress; have %d, %d, %d, %d",
			len(objs["Deployment"]), len(objs["Service"]), len(objs["PodDisruptionBudget"]), len(objs["Ingress"]))
	}
	var dep k8sDeployment
	if err := json.Unmarshal(objs["Deployment"][0], &dep); err != nil {
		t.Fatal(err)
	}
	pod := dep.Spec.Template
	if !matches(dep.Spec.Selector.MatchLabels, pod.Metadata.Labels) {
		t.Fatalf("the Deployment's selector %v does not select its pods %v", dep.Spec.Selector.MatchLabels, pod.Metadata.Labels)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = map[string]string{
				"AOBA_JWT_SECRET": testSecret, "AOBA_ADMIN_TOKEN": adminToken,
				"AOBA_MONGO_URI": "mongodb://127.0.0.1:1", "AOBA_REDIS_URL": "redis://127.0.0.1:1",
			}[e.Name]
		default:
			env[e.Name] = e.Value
		}
	}
	delay := durationEnv(t, env, "AOBA_DRAIN_DELAY", defaultDrainDelay)
	spread := durationEnv(t, env, "AOBA_DRAIN_SPREAD", defaultDrainSpread)

	t.Run("Settings", func(t *testing.T) {
		for name, v := range env {
			if !slices.Contains(main.EnvVars, name) {
				t.Errorf("the Deployment sets %s, which no setting reads", name)
			} else if v == "" {
				t.Errorf("%s comes from a secret this test does not know", name)
			}
		}
		if err := main.NewMain().ParseEnv(func(k string) string { return env[k] }); err != nil {
			t.Fatalf("the Deployment's settings: %v", err)
		}
		if env["AOBA_MONGO_URI"] == "" || env["AOBA_REDIS_URL"] == "" || env["AOBA_JWT_SECRET"] == "" {
			t.Fatal("the Deployment is not scaled out: AOBA_MONGO_URI, AOBA_REDIS_URL and AOBA_JWT_SECRET are needed")
		}
		if tag := c.Image[strings.LastIndex(c.Image, "/")+1:]; !strings.Contains(tag, ":") && !strings.Contains(tag, "@sha256:") || strings.HasSuffix(tag, ":latest") {
			t.Fatalf("image %s is not pinned to a version", c.Image)
		}
	})

	t.Run("Probes", func(t *testing.T) {
		routes := routeSet(t)
		loadSpec(t)
		_, addrPort, err := splitAddr(env["AOBA_ADDR"])
		if err != nil {
			t.Fatal(err)
		}
		ports := map[string]int{}
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
		for name, p := range map[string]*k8sProbe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
			if p == nil || p.HTTPGet == nil {
				t.Fatalf("no %s probe over HTTP", name)
			}
			if !routes["GET "+p.HTTPGet.Path] {
				t.Errorf("%s probe: GET %s is not a route of the server", name, p.HTTPGet.Path)
			}
			if spec.Paths.Find(p.HTTPGet.Path) == nil {
				t.Errorf("%s probe: %s is not in the OpenAPI document", name, p.HTTPGet.Path)
			}
			port := 0
			switch v := p.HTTPGet.Port.(type) {
			case string:
				port = ports[v]
			case float64:
				port = int(v)
			}
			if port != addrPort {
				t.Errorf("%s probe asks port %v (%d), the server listens on %d", name, p.HTTPGet.Port, port, addrPort)
			}
		}
		// Liveness must not depend on MongoDB or Redis: restarting every
		// pod cures neither.
		if l := c.LivenessProbe.HTTPGet.Path; l != "/health/live" {
			t.Errorf("liveness probe asks %s, want /health/live", l)
		}
		if r := c.ReadinessProbe.HTTPGet.Path; r != "/health/ready" {
			t.Errorf("readiness probe asks %s, want /health/ready", r)
		}
		// A draining pod is out of the Service before it closes sockets.
		if r := c.ReadinessProbe; time.Duration(r.PeriodSeconds*r.FailureThreshold)*time.Second > delay {
			t.Errorf("readiness notices a drain after up to %ds, longer than AOBA_DRAIN_DELAY %v", r.PeriodSeconds*r.FailureThreshold, delay)
		}
		// Start-up retries MongoDB and Redis for AOBA_START_TIMEOUT.
		start := durationEnv(t, env, "AOBA_START_TIMEOUT", defaultStartTimeout)
		if s := c.StartupProbe; time.Duration(s.PeriodSeconds*s.FailureThreshold)*time.Second < start {
			t.Errorf("the startup probe gives up after %ds, before AOBA_START_TIMEOUT %v", s.PeriodSeconds*s.FailureThreshold, start)
		}
	})

	t.Run("GraceFitsTheDrain", func(t *testing.T) {
		g := pod.Spec.TerminationGracePeriodSeconds
		if g == nil {
			t.Fatal("no terminationGracePeriodSeconds")
		}
		if need := delay + spread + shutdownGrace; time.Duration(*g)*time.Second < need {
			t.Fatalf("terminationGracePeriodSeconds %d < drain delay %v + spread %v + shutdown %v", *g, delay, spread, shutdownGrace)
		}
	})

	t.Run("ServicePDBIngress", func(t *testing.T) {
		var svc k8sService
		if err := json.Unmarshal(objs["Service"][0], &svc); err != nil {
			t.Fatal(err)
		}
		var svcName k8sObject
		_ = json.Unmarshal(objs["Service"][0], &svcName)
		if !matches(svc.Spec.Selector, pod.Metadata.Labels) {
			t.Errorf("the Service selects %v, not the pods %v", svc.Spec.Selector, pod.Metadata.Labels)
		}
		svcPorts := map[string]bool{}
		for _, p := range svc.Spec.Ports {
			svcPorts[p.Name] = true
			target, _ := p.TargetPort.(string)
			if !slices.ContainsFunc(c.Ports, func(cp struct {
				Name          string `json:"name"`
				ContainerPort int    `json:"containerPort"`
			}) bool {
				return cp.Name == target
			}) {
				t.Errorf("Service port %s targets %v, not a named container port", p.Name, p.TargetPort)
			}
		}
		var pdb k8sPDB
		if err := json.Unmarshal(objs["PodDisruptionBudget"][0], &pdb); err != nil {
			t.Fatal(err)
		}
		if !matches(pdb.Spec.Selector.MatchLabels, pod.Metadata.Labels) {
			t.Errorf("the PodDisruptionBudget selects %v, not the pods", pdb.Spec.Selector.MatchLabels)
		}
		if n, ok := pdb.Spec.MaxUnavailable.(float64); !ok || int(n) < 1 || int(n) >= dep.Spec.Replicas {
			t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1 to replicas-1 (%d replicas)", pdb.Spec.MaxUnavailable, dep.Spec.Replicas)
		}
		for _, doc := range objs["Ingress"] {
			var ing k8sIngress
			if err := json.Unmarshal(doc, &ing); err != nil {
				t.Fatal(err)
			}
			for _, r := range ing.Spec.Rules {
				for _, p := range r.HTTP.Paths {
					if b := p.Backend.Service; b.Name != svcName.Metadata.Name || !svcPorts[b.Port.Name] {
						t.Errorf("Ingress path %s goes to %s:%s, not to the Service's ports", p.Path, b.Name, b.Port.Name)
					}
				}
			}
			// Sockets idle between pings must outlive the proxy's read
			// timeout, and bodies up to the server's limit must reach it.
			a := ing.Metadata.Annotations
			if s, err := strconv.Atoi(a["nginx.ingress.kubernetes.io/proxy-read-timeout"]); err != nil || time.Duration(s)*time.Second <= realtime.DefaultPingInterval {
				t.Errorf("proxy-read-timeout %q, want more than the ping interval %v", a["nginx.ingress.kubernetes.io/proxy-read-timeout"], realtime.DefaultPingInterval)
			}
		}
	})
}

// splitAddr returns the host and port of a listen address such as ":8080".
func splitAddr(addr string) (string, int, error) {
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		return "", 0, errors.New("no port in " + addr)
	}
	port, err := strconv.Atoi(addr[i+1:])
	return addr[:i], port, err
}

// imageRef splits an image reference into its tag and digest.
var imageRef = regexp.MustCompile(`^[^\s:@]+(?::([^\s:@/]+))?(?:@sha256:([0-9a-f]{64}))?$`)

// exactVersion matches a tag naming an exact release (x.y.z, optionally
// with a variant such as -bookworm).
var exactVersion = regexp.MustCompile(`^\d+\.\d+\.\d+(-[a-z0-9.]+)?$`)

// isPinned reports whether image names a digest or an exact version.
func isPinned(image string) bool {
	m := imageRef.FindStringSubmatch(image)
	return m != nil && (m[2] != "" || exactVersion.MatchString(m[1]))
}

// TestDeployCompose checks docker-compose.yml, the Dockerfile and
// .dockerignore as an operator runs them: exact image versions, restart
// policies, the pods' health checks through `aoba healthcheck`, a stop
// grace that fits the drain, Redis with append-only persistence, a build
// context without the data directory; then has Docker Compose (or
// Debian's docker-compose) validate the file when either is installed.
func TestDeployCompose(t *testing.T) {
	path := repoFile("docker-compose.yml")
	docs := yamlDocs(t, path)
	if len(docs) != 1 {
		t.Fatalf("%d documents in %s", len(docs), path)
	}
	var compose struct {
		Services map[string]struct {
			Image       string          `json:"image"`
			Build       any             `json:"build"`
			Restart     string          `json:"restart"`
			Command     []string        `json:"command"`
			Environment map[string]any  `json:"environment"`
			DependsOn   json.RawMessage `json:"depends_on"`
			Healthcheck *struct {
				Test []string `json:"test"`
			} `json:"healthcheck"`
			StopGracePeriod string `json:"stop_grace_period"`
		} `json:"services"`
	}
	if err := json.Unmarshal(docs[0], &compose); err != nil {
		t.Fatal(err)
	}
	pods := 0
	for name, svc := range compose.Services {
		if svc.Restart != "unless-stopped" && svc.Restart != "always" {
			t.Errorf("%s: restart %q, want unless-stopped or always", name, svc.Restart)
		}
		if svc.Build != nil {
			pods++
			if svc.Healthcheck == nil || !slices.Equal(svc.Healthcheck.Test, []string{"CMD", "/aoba", "healthcheck"}) {
				t.Errorf("%s: the health check is not `aoba healthcheck`", name)
			}
			g, err := time.ParseDuration(svc.StopGracePeriod)
			delay, spread := defaultDrainDelay, defaultDrainSpread
			if v, ok := svc.Environment["AOBA_DRAIN_DELAY"].(string); ok {
				delay, _ = time.ParseDuration(v)
			}
			if v, ok := svc.Environment["AOBA_DRAIN_SPREAD"].(string); ok {
				spread, _ = time.ParseDuration(v)
			}
			if err != nil || g < delay+spread+shutdownGrace {
				t.Errorf("%s: stop_grace_period %q, want at least the drain (%v + %v) and the shutdown (%v)", name, svc.StopGracePeriod, delay, spread, shutdownGrace)
			}
			continue
		}
		if !isPinned(svc.Image) {
			t.Errorf("%s: image %q is not an exact version", name, svc.Image)
		}
		if strings.HasPrefix(svc.Image, "redis:") && !strings.Contains(strings.Join(svc.Command, " "), "--appendonly yes") {
			t.Errorf("redis runs without append-only persistence: %v", svc.Command)
		}
		if name == "lb" && !bytes.Contains(svc.DependsOn, []byte("service_healthy")) {
			t.Errorf("the load balancer does not wait for healthy pods: %s", svc.DependsOn)
		}
	}
	if pods < 2 {
		t.Errorf("%d Aoba pods built, want at least 2", pods)
	}

	t.Run("Dockerfile", func(t *testing.T) {
		b, err := os.ReadFile(repoFile("Dockerfile"))
		if err != nil {
			t.Fatal(err)
		}
		from := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(string(b), -1)
		if len(from) == 0 {
			t.Fatal("no FROM")
		}
		for _, m := range from {
			if !isPinned(m[1]) {
				t.Errorf("FROM %s is not an exact version", m[1])
			}
		}
		if !strings.Contains(string(b), "-X main.version=") {
			t.Error("the image build does not stamp the version")
		}
	})
	t.Run("Dockerignore", func(t *testing.T) {
		f, err := os.Open(repoFile(".dockerignore"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		have := map[string]bool{}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			have[strings.TrimSpace(sc.Text())] = true
		}
		for _, want := range []string{"data/", "**/data/", ".git/", "jwt-secret", "*.db", "**/node_modules/", "e2e/artifacts/"} {
			if !have[want] {
				t.Errorf(".dockerignore lacks %q", want)
			}
		}
	})
	t.Run("ComposeValidates", func(t *testing.T) {
		var cmd *exec.Cmd
		if exec.Command("docker", "compose", "version").Run() == nil {
			cmd = exec.Command("docker", "compose", "-f", path, "config", "-q")
		} else if bin, err := exec.LookPath("docker-compose"); err == nil {
			cmd = exec.Command(bin, "-f", path, "config", "-q")
		} else {
			t.Skip("neither `docker compose` nor docker-compose is installed: the compose file is not validated by Docker")
		}
		cmd.Env = append(os.Environ(), "AOBA_JWT_SECRET="+testSecret)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
		}
	})
}

// metricRef matches the names of Aoba's, Go's and the process's metrics in
// a PromQL expression.
var metricRef = regexp.MustCompile(`\b(?:aoba|go|process)_[a-z0-9_]+\b`)

// TestDeployMonitoring checks that the alert rules and the Grafana
// dashboard ask only for metrics a running server exports.
func TestDeployMonitoring(t *testing.T) {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer hook.Close()
	s := startMain(t, cheap(env{
		"AOBA_DATA_DIR": t.TempDir(), "AOBA_RATE_SEARCH": "1",
		"AOBA_WEBHOOK_URL": hook.URL, "AOBA_WEBHOOK_SECRET": "webhook-secret-0123456789",
	}))
	// Traffic, so that every labelled series has a child.
	alice, bob := s.register(t, "alice"), s.register(t, "bob")
	c := s.dialOK(t, bob.Token)
	s.do(t, "POST", "/api/messages", alice.Token, map[string]string{"to": bob.Name, "content": "hi"}).want(t, 201)
	readFrame(t, c, "message")
	s.do(t, "GET", "/api/users?q=al", alice.Token, nil).want(t, 200)
	s.do(t, "GET", "/api/users?q=al", alice.Token, nil).want(t, 429)
	exported := map[string]bool{}
	// The hub's counters of failures have no series before a failure: take
	// their names from their descriptions.
	for _, col := range hub.Collectors() {
		ch := make(chan *prometheus.Desc, 16)
		go func() { col.Describe(ch); close(ch) }()
		for d := range ch {
			if m := regexp.MustCompile(`fqName: "([^"]+)"`).FindStringSubmatch(d.String()); m != nil {
				exported[m[1]] = true
			}
		}
	}
	for _, line := range strings.Split(string(s.do(t, "GET", "/metrics", "", nil).want(t, 200).Body), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			exported[strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]] = true
		}
	}

	check := func(t *testing.T, where, expr string) {
		t.Helper()
		for _, name := range metricRef.FindAllString(expr, -1) {
			if !exported[name] {
				t.Errorf("%s asks for %s, which the server does not export", where, name)
			}
		}
	}
	t.Run("AlertRules", func(t *testing.T) {
		var rules struct {
			Groups []struct {
				Rules []struct {
					Alert string `json:"alert"`
					Expr  string `json:"expr"`
				} `json:"rules"`
			} `json:"groups"`
		}
		docs := yamlDocs(t, repoFile("deploy/prometheus/aoba-alerts.yml"))
		if len(docs) != 1 {
			t.Fatalf("%d documents", len(docs))
		}
		if err := json.Unmarshal(docs[0], &rules); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, g := range rules.Groups {
			for _, r := range g.Rules {
				check(t, "alert "+r.Alert, r.Expr)
				n++
			}
		}
		if n == 0 {
			t.Fatal("no alert rules")
		}
	})
	t.Run("Dashboard", func(t *testing.T) {
		b, err := os.ReadFile(repoFile("deploy/grafana/aoba-dashboard.json"))
		if err != nil {
			t.Fatal(err)
		}
		var dash any
		if err := json.Unmarshal(b, &dash); err != nil {
			t.Fatal(err)
		}
		n := 0
		var walk func(v any)
		walk = func(v any) {
			switch v := v.(type) {
			case map[string]any:
				for k, x := range v {
					if e, ok := x.(string); ok && k == "expr" {
						check(t, "dashboard", e)
						n++
					}
					walk(x)
				}
			case []any:
				for _, x := range v {
					walk(x)
				}
			}
		}
		walk(dash)
		if n == 0 {
			t.Fatal("no expressions in the dashboard")
		}
	})
}
