package dashboards

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mimwarehouse/mim/internal/config"
)

// Docker cannot run here, so the stack is checked by reading it: every
// service present, every image pinned, every file it mounts or builds from
// in the repository, and the pieces agreeing with each other.

const repo = ".."

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     []string          `yaml:"command"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   yaml.Node         `yaml:"depends_on"`
	Profiles    []string          `yaml:"profiles"`
}

func readCompose(t *testing.T) (map[string]composeService, map[string]any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]composeService `yaml:"services"`
		Volumes  map[string]any            `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c.Services, c.Volumes
}

// pinned says whether an image reference names an exact version.
var pinned = regexp.MustCompile(`^[a-z0-9./_-]+:v?[0-9]+\.[0-9]+(\.[0-9]+)?[a-z0-9.-]*$|@sha256:[0-9a-f]{64}$`)

func TestComposeStack(t *testing.T) {
	services, volumes := readCompose(t)
	for _, want := range []string{"postgres", "mim", "prometheus", "grafana", "superset"} {
		if _, ok := services[want]; !ok {
			t.Errorf("docker-compose.yml has no %s service", want)
		}
	}
	built := map[string]bool{}
	for name, s := range services {
		if s.Build != nil {
			df := filepath.Join(repo, s.Build.Context, s.Build.Dockerfile)
			if _, err := os.Stat(df); err != nil {
				t.Errorf("%s builds from %s: %v", name, df, err)
			}
			built[s.Image] = true
		}
	}
	for name, s := range services {
		switch {
		case s.Image == "":
			t.Errorf("%s has no image", name)
		case built[s.Image]:
		case !pinned.MatchString(s.Image) || strings.HasSuffix(s.Image, ":latest"):
			t.Errorf("%s: image %q is not pinned to a version", name, s.Image)
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join(repo, src)); err != nil {
					t.Errorf("%s mounts %s, which is not in the repository", name, src)
				}
			} else if _, ok := volumes[src]; !ok {
				t.Errorf("%s mounts volume %s, which is not declared", name, src)
			}
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s publishes %s on every interface", name, p)
			}
		}
		var deps []string
		switch s.DependsOn.Kind {
		case yaml.SequenceNode:
			_ = s.DependsOn.Decode(&deps)
		case yaml.MappingNode:
			m := map[string]any{}
			_ = s.DependsOn.Decode(&m)
			for k := range m {
				deps = append(deps, k)
			}
		}
		for _, d := range deps {
			if _, ok := services[d]; !ok {
				t.Errorf("%s depends on %s, which is not a service", name, d)
			}
		}
	}

	// The stack's PostgreSQL must not collide with the one ./scripts/setup
	// runs on this machine (the demo's and the tests').
	for _, p := range services["postgres"].Ports {
		if host := strings.Split(expandDefaults(p), ":"); len(host) != 3 || host[1] == "5432" {
			t.Errorf("postgres publishes %s: use another host port than 5432", p)
		}
	}

	// mim serve listens where Prometheus scrapes it, and its configuration
	// loads with the environment the compose file gives it.
	mim := services["mim"]
	var cfgMount string
	for _, v := range mim.Volumes {
		if parts := strings.Split(v, ":"); len(parts) >= 2 && parts[1] == "/etc/mim/mim.yaml" {
			cfgMount = parts[0]
		}
	}
	if cfgMount == "" || !slices.Contains(mim.Command, "/etc/mim/mim.yaml") || !slices.Contains(mim.Command, "serve") {
		t.Fatalf("the mim service does not run serve with a mounted configuration: %v %v", mim.Command, mim.Volumes)
	}
	raw, err := os.ReadFile(filepath.Join(repo, cfgMount))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for k, v := range mim.Environment {
		env[k] = expandDefaults(v)
	}
	cfg, err := config.Parse(raw, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("%s does not load with the compose environment: %v", cfgMount, err)
	}
	_, port, _ := strings.Cut(cfg.Serve.Listen, ":")
	prom, _ := fs.ReadFile(FS, "prometheus/prometheus.yml")
	if !strings.Contains(string(prom), `"mim:`+port+`"`) {
		t.Errorf("Prometheus does not scrape mim:%s (serve.listen %s)", port, cfg.Serve.Listen)
	}
	if !slices.Contains(mim.Ports, "127.0.0.1:"+port+":"+port) {
		t.Errorf("the mim service does not publish port %s: %v", port, mim.Ports)
	}

	// Grafana mounts the dashboards where its provisioning looks for them.
	provider, _ := fs.ReadFile(FS, "grafana/provisioning/dashboards/mim.yaml")
	path := regexp.MustCompile(`path: (\S+)`).FindStringSubmatch(string(provider))
	if path == nil || !slices.Contains(services["grafana"].Volumes, "./dashboards/grafana/dashboards:"+path[1]+":ro") {
		t.Errorf("Grafana's dashboards mount does not match the provider path %v: %v", path, services["grafana"].Volumes)
	}
	// Every variable the datasource provisioning reads is set.
	ds, _ := fs.ReadFile(FS, "grafana/provisioning/datasources/mim.yaml")
	for _, m := range regexp.MustCompile(`\$\{(\w+)\}`).FindAllStringSubmatch(string(ds), -1) {
		if _, ok := services["grafana"].Environment[m[1]]; !ok {
			t.Errorf("Grafana's datasources read ${%s}, which the compose file does not set", m[1])
		}
	}
	// Superset runs the bootstrap from the mounted directory.
	sup := services["superset"]
	if !slices.Contains(sup.Entrypoint, "/app/mim/bootstrap.sh") || !slices.Contains(sup.Volumes, "./dashboards/superset:/app/mim:ro") {
		t.Errorf("superset: entrypoint %v, volumes %v", sup.Entrypoint, sup.Volumes)
	}
	for _, script := range []string{"dashboards/superset/bootstrap.sh", "dashboards/compose/postgres-init.sh"} {
		st, err := os.Stat(filepath.Join(repo, script))
		if err != nil || st.Mode()&0o111 == 0 {
			t.Errorf("%s is not an executable file (%v)", script, err)
		}
	}
}

// expandDefaults resolves the compose file's ${VAR:-default} with nothing
// set, as `docker compose up` does on a fresh machine.
func expandDefaults(s string) string {
	return regexp.MustCompile(`\$\{\w+:-([^}]*)\}`).ReplaceAllString(s, "$1")
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repo, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)`).FindAllStringSubmatch(text, -1)
	if len(froms) < 2 {
		t.Fatalf("the Dockerfile is not multi-stage: %v", froms)
	}
	for _, f := range froms {
		if f[1] != "scratch" && !pinned.MatchString(f[1]) {
			t.Errorf("FROM %s is not pinned to a version", f[1])
		}
	}
	for _, want := range []string{"COPY --from=build", "./cmd/mim", "tzdata", "USER mim", "EXPOSE 9464",
		// Built with godror; Oracle Instant Client optional, from a build
		// context the operator names, the default stage empty.
		"CGO_ENABLED=1", "libaio1", "FROM scratch AS oracle-client", "COPY --from=oracle-client / /opt/oracle/instantclient/",
		"ENV LD_LIBRARY_PATH=/opt/oracle/instantclient", "--build-context oracle-client=/", "--build-context oracle-client=docker-image://"} {
		if !strings.Contains(text, want) {
			t.Errorf("the Dockerfile lacks %q", want)
		}
	}
	// The optional stage is defined before it is used, and nothing else
	// copies from it.
	if i, j := strings.Index(text, "AS oracle-client"), strings.Index(text, "--from=oracle-client"); i < 0 || j < i {
		t.Error("the oracle-client stage must be defined before the runtime copies from it")
	}
	// The builder's Go is the one go.mod asks for, at least.
	gomod, _ := os.ReadFile(filepath.Join(repo, "go.mod"))
	want := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(string(gomod))
	if want == nil || !strings.Contains(froms[1][1], "golang:"+want[1]) {
		t.Errorf("the build stage %s does not use Go %v", froms[1][1], want)
	}
}
