package test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const dockerfilePath = "../Dockerfile"

// dockerInstr is one instruction of a Dockerfile, continuation lines joined.
type dockerInstr struct {
	line int
	cmd  string // upper case: FROM, RUN, USER, ...
	args string
}

// dockerStage is one FROM and the instructions after it.
type dockerStage struct {
	image, name string
	instrs      []dockerInstr
}

// dockerfile is a parsed Dockerfile: the ARGs before the first FROM (which
// FROM lines may use) and the stages.
type dockerfile struct {
	globalArgs map[string]string
	stages     []dockerStage
}

func parseDockerfile(t *testing.T, path string) dockerfile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	df := dockerfile{globalArgs: map[string]string{}}
	var cur strings.Builder
	start := 0
	flush := func() {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := dockerInstr{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		switch {
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			st := dockerStage{image: os.Expand(f[0], func(k string) string { return df.globalArgs[k] })}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			df.stages = append(df.stages, st)
		case len(df.stages) == 0:
			if in.cmd != "ARG" {
				t.Fatalf("%s:%d: %s before the first FROM", path, in.line, in.cmd)
			}
			k, v, _ := strings.Cut(in.args, "=")
			df.globalArgs[k] = v
		default:
			df.stages[len(df.stages)-1].instrs = append(df.stages[len(df.stages)-1].instrs, in)
		}
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if cur.Len() == 0 {
			if trimmed := strings.TrimSpace(line); trimmed == "" || strings.HasPrefix(trimmed, "#") {
				continue
			}
			start = n
		} else if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue // a comment inside a continued instruction
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	if len(df.stages) < 2 {
		t.Fatalf("%s: %d stages, want a build stage and a runtime stage", path, len(df.stages))
	}
	return df
}

// all returns the arguments of every instruction cmd of the stage.
func (s dockerStage) all(cmd string) []dockerInstr {
	var out []dockerInstr
	for _, in := range s.instrs {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// last returns the arguments of the stage's last instruction cmd ("" if none):
// the one that counts for USER, ENTRYPOINT and CMD.
func (s dockerStage) last(cmd string) string {
	all := s.all(cmd)
	if len(all) == 0 {
		return ""
	}
	return all[len(all)-1].args
}

// execForm decodes an instruction's JSON (exec) form.
func execForm(t *testing.T, cmd, args string) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(args), &out); err != nil {
		t.Fatalf("%s %s: want the exec form [\"...\"]: %v", cmd, args, err)
	}
	return out
}

// ldflagsX matches the -X assignment of the build's -ldflags.
var ldflagsX = regexp.MustCompile(`-ldflags\s+"(-X\s+([A-Za-z0-9_./]+)=\$\{?VERSION\}?)"`)

// TestImageDockerfile checks the Dockerfile without Docker (the test machine
// has no daemon): a cgo build on the Go release go.mod names, a glibc runtime
// of the same Debian release, a numeric non-root user, the binary as
// entrypoint with the real `run` flags, the ports and data_dir of the shipped
// configs, a build context that holds every file the build reads, and the
// version stamped through the variable the -ldflags name.
func TestImageDockerfile(t *testing.T) {
	df := parseDockerfile(t, dockerfilePath)
	build, final := df.stages[0], df.stages[len(df.stages)-1]

	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if goVersion == nil {
		t.Fatal("go.mod has no go directive")
	}
	if want := "golang:" + string(goVersion[1]) + "-"; !strings.HasPrefix(build.image, want) {
		t.Errorf("build stage FROM %s: want %s<debian release> (go.mod says go %s)", build.image, want, goVersion[1])
	}
	// librdkafka comes statically linked for glibc: the runtime must be the
	// Debian release the binary was built on, not Alpine or a static image.
	release := build.image[strings.LastIndex(build.image, "-")+1:]
	if !slices.Contains([]string{"bookworm", "trixie"}, release) {
		t.Errorf("build stage FROM %s: want a Debian (bookworm or trixie) image, whose gcc and glibc cgo uses", build.image)
	}
	if !strings.Contains(final.image, release) && !strings.Contains(final.image, map[string]string{"bookworm": "debian12", "trixie": "debian13"}[release]) {
		t.Errorf("runtime FROM %s: want the build stage's Debian release %s (glibc of the build)", final.image, release)
	}

	var buildRun string
	for _, in := range build.all("RUN") {
		if strings.Contains(in.args, "go build") {
			buildRun = in.args
		}
	}
	if buildRun == "" {
		t.Fatal("build stage: no RUN with go build")
	}
	for _, want := range []string{"CGO_ENABLED=1", "-trimpath", "./cmd/tributary"} {
		if !strings.Contains(buildRun, want) {
			t.Errorf("build stage go build lacks %s: %s", want, buildRun)
		}
	}
	m := ldflagsX.FindStringSubmatch(buildRun)
	if m == nil {
		t.Fatalf(`build stage go build: no -ldflags "-X <var>=${VERSION}": %s`, buildRun)
	}
	ldflags, versionVar := m[1], m[2]
	if versionVar != "main.version" {
		t.Errorf("-X %s: the version variable is main.version (cmd/tributary/version.go)", versionVar)
	}

	user := final.last("USER")
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("final stage USER %q: want a numeric, non-root uid (Kubernetes runAsNonRoot checks it)", user)
	}
	// The user exists in the image with that uid (its home is data_dir's owner).
	if !slices.ContainsFunc(final.all("RUN"), func(in dockerInstr) bool {
		return strings.Contains(in.args, "--uid "+uid+" ") && strings.Contains(in.args, "chown "+user+" ")
	}) {
		t.Errorf("final stage: no RUN creating user %s (useradd --uid %s) and giving it the data directory (chown %s)", uid, uid, user)
	}
	entry := execForm(t, "ENTRYPOINT", final.last("ENTRYPOINT"))
	if len(entry) != 1 || entry[0] != "/usr/local/bin/tributary" {
		t.Errorf("ENTRYPOINT %q: want [\"/usr/local/bin/tributary\"]", entry)
	}
	if !slices.ContainsFunc(final.all("COPY"), func(in dockerInstr) bool {
		return strings.HasPrefix(in.args, "--from="+build.name+" ") && strings.HasSuffix(in.args, " /usr/local/bin/tributary")
	}) {
		t.Errorf("final stage: no COPY --from=%s ... /usr/local/bin/tributary", build.name)
	}
	cmd := execForm(t, "CMD", final.last("CMD"))
	if len(cmd) < 3 || cmd[0] != "run" || cmd[1] != "--config" {
		t.Errorf("CMD %q: want [\"run\", \"--config\", FILE, ...]", cmd)
	}

	// The ports and data_dir of every config this repository ships.
	var exposed []string
	for _, in := range final.all("EXPOSE") {
		exposed = append(exposed, strings.Fields(in.args)...)
	}
	volumes := execForm(t, "VOLUME", final.last("VOLUME"))
	for _, sc := range shippedConfigs(t) {
		for _, key := range []string{"node.raft_addr", "node.http_addr"} {
			if port := sc.ports[key]; !slices.Contains(exposed, port) {
				t.Errorf("%s: %s port %s is not EXPOSEd (EXPOSE %v)", sc.name, key, port, exposed)
			}
		}
		if !slices.Contains(volumes, sc.dataDir) {
			t.Errorf("%s: node.data_dir %s is not a VOLUME (%v)", sc.name, sc.dataDir, volumes)
		}
	}

	checkDockerignore(t)

	if testing.Short() {
		t.Skip("-short: builds the tributary binary to check the -ldflags and the run flags")
	}
	const stamp = "v9.8.7-image-test"
	bin := stampedBinary(t)
	if got := strings.ReplaceAll(strings.ReplaceAll(ldflags, "${VERSION}", stamp), "$VERSION", stamp); got != stampedLdflags {
		t.Errorf("the Dockerfile's -ldflags %q with VERSION=%s give %q, the test built with %q", ldflags, stamp, got, stampedLdflags)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "tributary "+stamp+" (") {
		t.Errorf("tributary version built with -ldflags %q: %q, %v; want it to start with %q", stampedLdflags, out, err, "tributary "+stamp+" (")
	}
	checkRunFlags(t, bin, "CMD", cmd)
}

// checkDockerignore fails when .dockerignore leaves out a file `go build
// ./cmd/tributary` reads: go.mod, go.sum, and the Go, cgo and embedded files of
// every package of this module the binary imports.
func checkDockerignore(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			if strings.HasPrefix(l, "!") {
				t.Fatalf(".dockerignore: exceptions (%s) are not understood by this test", l)
			}
			patterns = append(patterns, strings.TrimSuffix(l, "/"))
		}
	}
	out, err := exec.Command("go", "list", "-deps", "-f",
		`{{if .Module}}{{if .Module.Main}}{{.Dir}}|{{join .GoFiles ","}},{{join .CgoFiles ","}},{{join .EmbedFiles ","}},{{join .HFiles ","}},{{join .CFiles ","}}{{end}}{{end}}`,
		"../cmd/tributary").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	needed := []string{"go.mod", "go.sum"}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		dir, files, ok := strings.Cut(l, "|")
		if !ok {
			continue
		}
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range strings.Split(files, ",") {
			if f != "" {
				needed = append(needed, filepath.ToSlash(filepath.Join(rel, f)))
			}
		}
	}
	if len(needed) < 20 {
		t.Fatalf("go list found only %d files the build needs: %v", len(needed), needed)
	}
	for _, f := range needed {
		if p := dockerignored(patterns, f); p != "" {
			t.Errorf(".dockerignore pattern %q leaves %s out of the build context", p, f)
		}
	}
}

// dockerignored returns the pattern that excludes path (slash-separated,
// relative to the context) or "". As in Docker, a pattern excludes what it
// matches and everything below, and "**/" matches any number of directories.
func dockerignored(patterns []string, path string) string {
	parts := strings.Split(path, "/")
	for _, p := range patterns {
		pp := strings.Split(p, "/")
		if pp[0] == "**" {
			rest := strings.Join(pp[1:], "/")
			for i := range parts {
				if matchPrefix(rest, parts[i:]) {
					return p
				}
			}
			continue
		}
		if matchPrefix(p, parts) {
			return p
		}
	}
	return ""
}

// matchPrefix reports whether pattern matches the first components of parts.
func matchPrefix(pattern string, parts []string) bool {
	n := len(strings.Split(pattern, "/"))
	if n > len(parts) {
		return false
	}
	ok, _ := filepath.Match(pattern, strings.Join(parts[:n], "/"))
	return ok
}

// The binary of this package's deploy tests: built once, with the version
// stamped the way the Dockerfile does it. The compile steps are those of any
// other build of ./cmd/tributary (the -X flag only changes the link), so it
// costs a link when another test built the binary before.
var (
	stampedOnce    sync.Once
	stampedBin     string
	stampedErr     error
	stampedLdflags = "-X main.version=v9.8.7-image-test"
)

func stampedBinary(t *testing.T) string {
	t.Helper()
	stampedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tributary-stamped-")
		if err != nil {
			stampedErr = err
			return
		}
		stampedBin = filepath.Join(dir, "tributary")
		start := time.Now()
		cmd := exec.Command("go", "build", "-ldflags", stampedLdflags, "-o", stampedBin, "../cmd/tributary")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			stampedErr = fmt.Errorf("go build -ldflags %q: %v\n%s", stampedLdflags, err, out)
			return
		}
		t.Logf("built tributary with -ldflags %q in %v", stampedLdflags, time.Since(start).Round(time.Millisecond))
	})
	if stampedErr != nil {
		t.Fatal(stampedErr)
	}
	return stampedBin
}

// checkRunFlags fails when args (a `tributary run ...` command line) use a
// flag that `tributary run` does not define. The flags come from the binary's
// own usage text (`run -h`).
func checkRunFlags(t *testing.T, bin, where string, args []string) {
	t.Helper()
	if len(args) == 0 || args[0] != "run" {
		t.Errorf("%s: %q is not a run command line", where, args)
		return
	}
	out, _ := exec.Command(bin, "run", "-h").CombinedOutput()
	defined := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z][a-z-]*)`).FindAllStringSubmatch(string(out), -1) {
		defined[m[1]] = true
	}
	if !defined["config"] {
		t.Fatalf("tributary run -h lists no -config flag:\n%s", out)
	}
	for _, a := range args[1:] {
		if name, ok := strings.CutPrefix(a, "-"); ok {
			name = strings.TrimPrefix(name, "-")
			name, _, _ = strings.Cut(name, "=")
			if !defined[name] {
				t.Errorf("%s: tributary run has no flag %s (it has %v)", where, a, mapKeys(defined))
			}
		}
	}
}

func mapKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
