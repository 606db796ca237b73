package test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tributary-dev/tributary/internal/tlstest"
)

const (
	k8sDir         = "../deploy/kubernetes"
	k8sSecretsFile = k8sDir + "/secrets.example.yaml"
)

// k8sObj is one Kubernetes object as YAML decodes it.
type k8sObj = map[string]any

// kustomization is the part of kustomization.yaml the manifests use. Decoding
// is strict: a kustomize feature this test does not apply is an error here
// rather than a silent difference from `kubectl kustomize`.
type kustomization struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Namespace  string   `yaml:"namespace"`
	NamePrefix string   `yaml:"namePrefix"`
	Resources  []string `yaml:"resources"`
	Labels     []struct {
		Pairs            map[string]string `yaml:"pairs"`
		IncludeSelectors bool              `yaml:"includeSelectors"`
	} `yaml:"labels"`
	Images []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
	} `yaml:"images"`
	Patches []struct {
		Path   string `yaml:"path"`
		Target struct {
			Kind string `yaml:"kind"`
			Name string `yaml:"name"`
		} `yaml:"target"`
	} `yaml:"patches"`
}

// readYAMLDocs decodes every document of a YAML file.
func readYAMLDocs(t *testing.T, path string) []k8sObj {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return decodeYAMLDocs(t, path, b)
}

func decodeYAMLDocs(t *testing.T, name string, b []byte) []k8sObj {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []k8sObj
	for {
		var o k8sObj
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if o != nil {
			out = append(out, o)
		}
	}
}

// dig walks o along keys (string keys of maps, int indexes of lists).
func dig(o any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := o.(k8sObj)
			if !ok {
				return nil
			}
			o = m[k]
		case int:
			l, ok := o.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			o = l[k]
		}
	}
	return o
}

func digStr(o any, keys ...any) string { s, _ := dig(o, keys...).(string); return s }
func digMap(o any, keys ...any) k8sObj { m, _ := dig(o, keys...).(k8sObj); return m }
func digList(o any, keys ...any) []any { l, _ := dig(o, keys...).([]any); return l }

func objName(o k8sObj) string { return digStr(o, "metadata", "name") }

// renderKustomization applies a kustomization the way `kubectl kustomize` does
// for the features the manifests use: resources (files and directories),
// JSON 6902 patches by target kind and name, namePrefix with the references
// to renamed objects, labels (into selectors with includeSelectors) and
// namespace.
func renderKustomization(t *testing.T, dir string) []k8sObj {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	var objs []k8sObj
	for _, r := range k.Resources {
		p := filepath.Join(dir, r)
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			objs = append(objs, renderKustomization(t, p)...)
		} else {
			objs = append(objs, readYAMLDocs(t, p)...)
		}
	}
	for _, p := range k.Patches {
		var ops []jsonPatchOp
		pb, err := os.ReadFile(filepath.Join(dir, p.Path))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(pb, &ops); err != nil {
			t.Fatalf("%s/%s: %v", dir, p.Path, err)
		}
		n := 0
		for _, o := range objs {
			if o["kind"] == p.Target.Kind && objName(o) == p.Target.Name {
				n++
				for _, op := range ops {
					if err := op.apply(o); err != nil {
						t.Fatalf("%s/%s on %s %s: %v", dir, p.Path, p.Target.Kind, p.Target.Name, err)
					}
				}
			}
		}
		if n == 0 {
			t.Fatalf("%s/%s: no %s named %s", dir, p.Path, p.Target.Kind, p.Target.Name)
		}
	}
	if k.NamePrefix != "" {
		renamed := map[string]map[string]bool{} // kind -> old names
		for _, o := range objs {
			kind := o["kind"].(string)
			if renamed[kind] == nil {
				renamed[kind] = map[string]bool{}
			}
			renamed[kind][objName(o)] = true
			digMap(o, "metadata")["name"] = k.NamePrefix + objName(o)
		}
		ref := func(m k8sObj, key, kind string) {
			if s, ok := m[key].(string); ok && renamed[kind][s] {
				m[key] = k.NamePrefix + s
			}
		}
		for _, o := range objs {
			if o["kind"] != "StatefulSet" {
				continue
			}
			ref(digMap(o, "spec"), "serviceName", "Service")
			for _, v := range digList(o, "spec", "template", "spec", "volumes") {
				if m := digMap(v, "configMap"); m != nil {
					ref(m, "name", "ConfigMap")
				}
				if m := digMap(v, "secret"); m != nil {
					ref(m, "secretName", "Secret")
				}
			}
			for _, c := range podContainers(o) {
				for _, e := range digList(c, "env") {
					if m := digMap(e, "valueFrom", "secretKeyRef"); m != nil {
						ref(m, "name", "Secret")
					}
					if m := digMap(e, "valueFrom", "configMapKeyRef"); m != nil {
						ref(m, "name", "ConfigMap")
					}
				}
			}
		}
	}
	for _, l := range k.Labels {
		for _, o := range objs {
			addLabels(o, l.Pairs, "metadata", "labels")
			if !l.IncludeSelectors {
				continue
			}
			switch o["kind"] {
			case "Service":
				addLabels(o, l.Pairs, "spec", "selector")
			case "PodDisruptionBudget":
				addLabels(o, l.Pairs, "spec", "selector", "matchLabels")
			case "StatefulSet":
				addLabels(o, l.Pairs, "spec", "selector", "matchLabels")
				addLabels(o, l.Pairs, "spec", "template", "metadata", "labels")
				for _, c := range digList(o, "spec", "template", "spec", "topologySpreadConstraints") {
					addLabels(c.(k8sObj), l.Pairs, "labelSelector", "matchLabels")
				}
				for _, kind := range []string{"podAffinity", "podAntiAffinity"} {
					for _, term := range digList(o, "spec", "template", "spec", "affinity", kind, "requiredDuringSchedulingIgnoredDuringExecution") {
						addLabels(term.(k8sObj), l.Pairs, "labelSelector", "matchLabels")
					}
				}
				for _, v := range digList(o, "spec", "volumeClaimTemplates") {
					addLabels(v.(k8sObj), l.Pairs, "metadata", "labels")
				}
			}
		}
	}
	for _, img := range k.Images {
		for _, o := range objs {
			for _, c := range podContainers(o) {
				name, tag, _ := strings.Cut(digStr(c, "image"), ":")
				if name != img.Name {
					continue
				}
				if img.NewName != "" {
					name = img.NewName
				}
				if img.NewTag != "" {
					tag = img.NewTag
				}
				c.(k8sObj)["image"] = name + ":" + tag
			}
		}
	}
	if k.Namespace != "" {
		for _, o := range objs {
			digMap(o, "metadata")["namespace"] = k.Namespace
		}
	}
	return objs
}

// addLabels sets pairs in the map at path under o, creating it.
func addLabels(o k8sObj, pairs map[string]string, path ...string) {
	m := o
	for _, p := range path {
		next, ok := m[p].(k8sObj)
		if !ok {
			next = k8sObj{}
			m[p] = next
		}
		m = next
	}
	for k, v := range pairs {
		m[k] = v
	}
}

// jsonPatchOp is one RFC 6902 operation: test, replace or add.
type jsonPatchOp struct {
	Op    string `yaml:"op"`
	Path  string `yaml:"path"`
	Value any    `yaml:"value"`
}

func (op jsonPatchOp) apply(doc k8sObj) error {
	var parts []string
	for _, p := range strings.Split(strings.TrimPrefix(op.Path, "/"), "/") {
		parts = append(parts, strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~"))
	}
	var parent any = doc
	for _, p := range parts[:len(parts)-1] {
		switch c := parent.(type) {
		case k8sObj:
			parent = c[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(c) {
				return fmt.Errorf("%s: no element %s", op.Path, p)
			}
			parent = c[i]
		default:
			return fmt.Errorf("%s: %s is not inside a map or list", op.Path, p)
		}
	}
	last := parts[len(parts)-1]
	switch c := parent.(type) {
	case k8sObj:
		cur, exists := c[last]
		switch op.Op {
		case "test":
			if !reflect.DeepEqual(cur, op.Value) {
				return fmt.Errorf("test %s: %v, want %v", op.Path, cur, op.Value)
			}
		case "replace":
			if !exists {
				return fmt.Errorf("replace %s: no such key", op.Path)
			}
			c[last] = op.Value
		case "add":
			c[last] = op.Value
		default:
			return fmt.Errorf("op %q: not used by the manifests, not applied by this test", op.Op)
		}
	case []any:
		i, err := strconv.Atoi(last)
		if err != nil || i >= len(c) {
			return fmt.Errorf("%s: no element %s", op.Path, last)
		}
		switch op.Op {
		case "test":
			if !reflect.DeepEqual(c[i], op.Value) {
				return fmt.Errorf("test %s: %v, want %v", op.Path, c[i], op.Value)
			}
		case "replace":
			c[i] = op.Value
		default:
			return fmt.Errorf("op %q on a list element: not applied by this test", op.Op)
		}
	default:
		return fmt.Errorf("%s: parent is not a map or list", op.Path)
	}
	return nil
}

// podContainers returns the init containers and containers of a workload.
func podContainers(o k8sObj) []any {
	spec := digMap(o, "spec", "template", "spec")
	return append(slices.Clone(digList(spec, "initContainers")), digList(spec, "containers")...)
}

// k8sOverlays are the regions with an overlay.
func k8sOverlays(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(k8sDir + "/overlays")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	if len(out) < 3 {
		t.Fatalf("overlays %v: want two regions and the cloud", out)
	}
	return out
}

// byKind indexes rendered objects by kind and name.
func byKind(objs []k8sObj) map[string]map[string]k8sObj {
	out := map[string]map[string]k8sObj{}
	for _, o := range objs {
		kind := o["kind"].(string)
		if out[kind] == nil {
			out[kind] = map[string]k8sObj{}
		}
		out[kind][objName(o)] = o
	}
	return out
}

// subsetOf reports whether every pair of sel is in labels (and sel is not empty).
func subsetOf(sel, labels k8sObj) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestKubernetesManifests renders every overlay under deploy/kubernetes (with
// this file's kustomize subset, and compares it with `kubectl kustomize` when
// kubectl is installed), checks that names, references, ports, labels and
// selectors agree, and runs the real `tributary config check` on the config
// each pod would read, with the pod's environment, files laid out as its
// volumes and init container leave them, and a certificate naming the pod.
func TestKubernetesManifests(t *testing.T) {
	secrets := byKind(readYAMLDocs(t, k8sSecretsFile))["Secret"]
	for name, s := range secrets {
		for k, v := range digMap(s, "stringData") {
			if str, _ := v.(string); !strings.Contains(str, "REPLACE-ME") {
				t.Errorf("%s: Secret %s key %s does not say REPLACE-ME: example Secrets hold placeholders only", k8sSecretsFile, name, k)
			}
		}
	}
	regions := k8sOverlays(t)
	rendered := map[string][]k8sObj{}
	for _, r := range regions {
		rendered[r] = renderKustomization(t, filepath.Join(k8sDir, "overlays", r))
	}

	if kubectl, err := exec.LookPath("kubectl"); err != nil {
		t.Log("kubectl not installed: the overlays are checked as this test renders them, not compared with kubectl kustomize")
	} else {
		for _, r := range regions {
			out, err := exec.Command(kubectl, "kustomize", filepath.Join(k8sDir, "overlays", r)).Output()
			if err != nil {
				t.Fatalf("kubectl kustomize overlays/%s: %v", r, err)
			}
			want := byKind(decodeYAMLDocs(t, "kubectl kustomize overlays/"+r, out))
			got := byKind(rendered[r])
			if !reflect.DeepEqual(got, want) {
				for kind := range mergeKeys(got, want) {
					for name := range mergeKeys(got[kind], want[kind]) {
						if !reflect.DeepEqual(got[kind][name], want[kind][name]) {
							g, _ := yaml.Marshal(got[kind][name])
							w, _ := yaml.Marshal(want[kind][name])
							t.Errorf("overlays/%s: %s %s as this test renders it differs from kubectl kustomize:\n--- test\n%s\n--- kubectl\n%s", r, kind, name, g, w)
						}
					}
				}
			}
		}
	}

	// Every pod of every region, for the bootstrap and join lists.
	pods := map[string]bool{}
	var bin string
	if !testing.Short() {
		bin = stampedBinary(t)
	}
	for _, r := range regions {
		t.Run(r, func(t *testing.T) {
			objs := byKind(rendered[r])
			for _, p := range checkRegion(t, r, objs, secrets, bin) {
				pods[p] = true
			}
		})
	}

	// cluster.bootstrap and cluster.join name pods the overlays make.
	cfg := shippedConfigs(t)[0].doc
	for _, e := range digList(cfg, "cluster", "bootstrap") {
		id, addr, _ := strings.Cut(e.(string), "@")
		if !pods[id] {
			t.Errorf("cluster.bootstrap %s: no overlay makes pod %s (pods: %v)", e, id, mapKeys(pods))
		}
		if !strings.HasPrefix(addr, id+"."+strings.TrimSuffix(id, "-0")+"-raft.tributary.svc.cluster.local:") {
			t.Errorf("cluster.bootstrap %s: want the pod's name in its region's headless Service", e)
		}
	}
	if n := len(digList(cfg, "cluster", "bootstrap")); n != len(regions) {
		t.Errorf("cluster.bootstrap has %d voters: want one per region (%d)", n, len(regions))
	}
	for _, j := range digList(cfg, "cluster", "join") {
		host, _, _ := strings.Cut(j.(string), ".")
		if !pods[host] {
			t.Errorf("cluster.join %s: no overlay makes pod %s", j, host)
		}
	}
}

func mergeKeys[V any](a, b map[string]V) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// checkRegion checks one rendered overlay and returns its pods' names.
func checkRegion(t *testing.T, region string, objs map[string]map[string]k8sObj, secrets map[string]k8sObj, bin string) []string {
	if len(objs["StatefulSet"]) != 1 {
		t.Fatalf("%d StatefulSets: want one per region", len(objs["StatefulSet"]))
	}
	var sts k8sObj
	for _, o := range objs["StatefulSet"] {
		sts = o
	}
	stsName := objName(sts)
	ns := digStr(sts, "metadata", "namespace")
	podSpec := digMap(sts, "spec", "template", "spec")
	podLabels := digMap(sts, "spec", "template", "metadata", "labels")
	if podLabels["tributary.dev/region"] != region {
		t.Errorf("pod label tributary.dev/region %v, want %s", podLabels["tributary.dev/region"], region)
	}
	if !subsetOf(digMap(sts, "spec", "selector", "matchLabels"), podLabels) {
		t.Errorf("StatefulSet selector %v does not match its pods' labels %v", digMap(sts, "spec", "selector", "matchLabels"), podLabels)
	}
	replicas, _ := dig(sts, "spec", "replicas").(int)
	if replicas < 1 {
		t.Fatalf("replicas %v", dig(sts, "spec", "replicas"))
	}

	// The headless Service of the StatefulSet, and every Service selects this
	// region's pods only.
	raftSvc := objs["Service"][digStr(sts, "spec", "serviceName")]
	if raftSvc == nil {
		t.Fatalf("serviceName %s: no such Service (have %v)", digStr(sts, "spec", "serviceName"), slices.Sorted(maps.Keys(objs["Service"])))
	}
	if digStr(raftSvc, "spec", "clusterIP") != "None" || dig(raftSvc, "spec", "publishNotReadyAddresses") != true {
		t.Errorf("Service %s: want headless (clusterIP: None) with publishNotReadyAddresses: true (peers must reach a pod before it is ready)", objName(raftSvc))
	}
	main := digMap(podSpec, "containers", 0)
	declared := map[string]int{}
	for _, p := range digList(main, "ports") {
		declared[digStr(p, "name")], _ = dig(p, "containerPort").(int)
	}
	for name, svc := range objs["Service"] {
		sel := digMap(svc, "spec", "selector")
		if !subsetOf(sel, podLabels) || sel["tributary.dev/region"] != region {
			t.Errorf("Service %s: selector %v must select this region's pods (labels %v) and only them", name, sel, podLabels)
		}
		for _, p := range digList(svc, "spec", "ports") {
			if tp := digStr(p, "targetPort"); declared[tp] == 0 {
				t.Errorf("Service %s: targetPort %v is not a declared container port (%v)", name, dig(p, "targetPort"), declared)
			}
		}
	}
	for name, pdb := range objs["PodDisruptionBudget"] {
		if !subsetOf(digMap(pdb, "spec", "selector", "matchLabels"), podLabels) {
			t.Errorf("PodDisruptionBudget %s: selector does not match the pods", name)
		}
		if dig(pdb, "spec", "maxUnavailable") != 1 {
			t.Errorf("PodDisruptionBudget %s: maxUnavailable %v, want 1", name, dig(pdb, "spec", "maxUnavailable"))
		}
	}
	if len(objs["PodDisruptionBudget"]) != 1 {
		t.Errorf("%d PodDisruptionBudgets, want 1", len(objs["PodDisruptionBudget"]))
	}

	// Spread across zones and hosts, selecting this StatefulSet's pods.
	spread := false
	for _, c := range digList(podSpec, "topologySpreadConstraints") {
		if digStr(c, "topologyKey") == "topology.kubernetes.io/zone" && subsetOf(digMap(c, "labelSelector", "matchLabels"), podLabels) {
			spread = true
		}
	}
	if !spread {
		t.Error("no topologySpreadConstraints over topology.kubernetes.io/zone selecting the pods")
	}
	anti := digList(podSpec, "affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution")
	if len(anti) == 0 || !subsetOf(digMap(anti[0], "labelSelector", "matchLabels"), podLabels) {
		t.Error("no required podAntiAffinity selecting the pods: two nodes of a region could share a host")
	}

	// Non-root, read-only root file system, no privilege escalation.
	if dig(podSpec, "securityContext", "runAsNonRoot") != true {
		t.Error("pod securityContext.runAsNonRoot is not true")
	}
	df := parseDockerfile(t, dockerfilePath)
	imageUser, _, _ := strings.Cut(df.stages[len(df.stages)-1].last("USER"), ":")
	if uid, _ := dig(podSpec, "securityContext", "runAsUser").(int); uid == 0 || strconv.Itoa(uid) != imageUser {
		t.Errorf("pod securityContext.runAsUser %v: want the image's non-root USER %s", dig(podSpec, "securityContext", "runAsUser"), imageUser)
	}
	volumes := map[string]k8sObj{}
	for _, v := range digList(podSpec, "volumes") {
		volumes[digStr(v, "name")] = v.(k8sObj)
	}
	for _, v := range digList(sts, "spec", "volumeClaimTemplates") {
		volumes[digStr(v, "metadata", "name")] = k8sObj{"pvc": v}
	}
	for _, c := range podContainers(sts) {
		cname := digStr(c, "name")
		if dig(c, "securityContext", "readOnlyRootFilesystem") != true || dig(c, "securityContext", "allowPrivilegeEscalation") != false {
			t.Errorf("container %s: want readOnlyRootFilesystem: true and allowPrivilegeEscalation: false", cname)
		}
		for _, m := range digList(c, "volumeMounts") {
			if volumes[digStr(m, "name")] == nil {
				t.Errorf("container %s mounts %s: no such volume or volumeClaimTemplate", cname, digStr(m, "name"))
			}
		}
	}
	for name, v := range volumes {
		if cm := digStr(v, "configMap", "name"); cm != "" && objs["ConfigMap"][cm] == nil {
			t.Errorf("volume %s: ConfigMap %s does not exist in the overlay", name, cm)
		}
	}

	// Probes on declared ports.
	for probe, path := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		p := digMap(main, probe, "httpGet")
		if p == nil || digStr(p, "path") != path {
			t.Errorf("%s: want httpGet %s, got %v", probe, path, p)
			continue
		}
		if port := digStr(p, "port"); declared[port] == 0 {
			t.Errorf("%s: port %v is not a declared container port (%v)", probe, dig(p, "port"), declared)
		}
		if digStr(p, "scheme") != "HTTPS" {
			t.Errorf("%s: scheme %q: with security.tls the node serves HTTPS only", probe, digStr(p, "scheme"))
		}
	}

	// Env: the region and the headless Service's name as the overlay makes them.
	env := map[string]k8sObj{}
	for _, e := range digList(main, "env") {
		env[digStr(e, "name")] = e.(k8sObj)
	}
	if v := digStr(env["TRIBUTARY_REGION"], "value"); v != region {
		t.Errorf("env TRIBUTARY_REGION %q, want the overlay's region %s", v, region)
	}
	if v := digStr(env["TRIBUTARY_RAFT_SERVICE"], "value"); v != objName(raftSvc) {
		t.Errorf("env TRIBUTARY_RAFT_SERVICE %q, want the headless Service %s", v, objName(raftSvc))
	}

	// Secrets: each one referenced is in secrets.example.yaml with its keys;
	// the TLS Secret holds a certificate and key per pod.
	var pods []string
	for i := range replicas {
		pods = append(pods, fmt.Sprintf("%s-%d", stsName, i))
	}
	secretKey := func(where, name, key string) {
		s := secrets[name]
		if s == nil {
			t.Errorf("%s: Secret %s is not in %s", where, name, k8sSecretsFile)
		} else if _, ok := digMap(s, "stringData")[key]; !ok {
			t.Errorf("%s: Secret %s has no key %s in %s", where, name, key, k8sSecretsFile)
		}
	}
	for name, e := range env {
		if ref := digMap(e, "valueFrom", "secretKeyRef"); ref != nil {
			secretKey("env "+name, digStr(ref, "name"), digStr(ref, "key"))
		}
	}
	tlsSecret := ""
	for name, v := range volumes {
		for _, s := range volumeSecrets(v) {
			if secrets[s] == nil {
				t.Errorf("volume %s: Secret %s is not in %s", name, s, k8sSecretsFile)
			}
			if strings.HasPrefix(s, "tributary-tls") {
				tlsSecret = s
			}
		}
	}
	if want := "tributary-tls-" + region; tlsSecret != want {
		t.Errorf("the pods mount the TLS Secret %q, want their region's %s", tlsSecret, want)
	}
	secretKey("TLS Secret", tlsSecret, "ca.pem")
	for _, p := range pods {
		secretKey("TLS Secret", tlsSecret, p+".pem")
		secretKey("TLS Secret", tlsSecret, p+"-key.pem")
	}

	// The ServiceMonitor scrapes this region's HTTP Service, over TLS with the CA.
	if len(objs["ServiceMonitor"]) != 1 {
		t.Errorf("%d ServiceMonitors, want 1", len(objs["ServiceMonitor"]))
	}
	for name, sm := range objs["ServiceMonitor"] {
		sel := digMap(sm, "spec", "selector", "matchLabels")
		var scraped []k8sObj
		for _, svc := range objs["Service"] {
			if subsetOf(sel, digMap(svc, "metadata", "labels")) {
				scraped = append(scraped, svc)
			}
		}
		if len(scraped) != 1 || digStr(scraped[0], "spec", "clusterIP") == "None" || sel["tributary.dev/region"] != region {
			t.Errorf("ServiceMonitor %s: selector %v must pick this region's HTTP Service alone (it picks %d Services)", name, sel, len(scraped))
			continue
		}
		ep := digMap(sm, "spec", "endpoints", 0)
		if digStr(ep, "path") != "/metrics" || digStr(ep, "scheme") != "https" {
			t.Errorf("ServiceMonitor %s: endpoint %v, want path /metrics over https", name, ep)
		}
		if !slices.ContainsFunc(digList(scraped[0], "spec", "ports"), func(p any) bool { return digStr(p, "name") == digStr(ep, "port") }) {
			t.Errorf("ServiceMonitor %s: port %q is not a port of Service %s", name, digStr(ep, "port"), objName(scraped[0]))
		}
		if want := objName(scraped[0]) + "." + ns + ".svc"; digStr(ep, "tlsConfig", "serverName") != want {
			t.Errorf("ServiceMonitor %s: tlsConfig.serverName %q, want %s (the name every node certificate of the region carries)", name, digStr(ep, "tlsConfig", "serverName"), want)
		}
		secretKey("ServiceMonitor "+name, digStr(ep, "tlsConfig", "ca", "secret", "name"), digStr(ep, "tlsConfig", "ca", "secret", "key"))
	}

	// The config every pod reads.
	args := digList(main, "args")
	var argv []string
	for _, a := range args {
		argv = append(argv, a.(string))
	}
	mounts := map[string]k8sObj{}
	for _, m := range digList(main, "volumeMounts") {
		mounts[digStr(m, "mountPath")] = m.(k8sObj)
	}
	if len(argv) < 3 || argv[1] != "--config" || mounts[argv[2]] == nil {
		t.Fatalf("args %q: want run --config <a mounted file>", argv)
	}
	cfgMount := mounts[argv[2]]
	cm := objs["ConfigMap"][digStr(volumes[digStr(cfgMount, "name")], "configMap", "name")]
	cfgText := digStr(cm, "data", digStr(cfgMount, "subPath"))
	if cfgText == "" {
		t.Fatalf("config mount %s: ConfigMap %s has no key %q", argv[2], objName(cm), digStr(cfgMount, "subPath"))
	}
	var cfg k8sObj
	if err := yaml.Unmarshal([]byte(cfgText), &cfg); err != nil {
		t.Fatal(err)
	}
	for key, port := range map[string]string{"raft_addr": "raft", "http_addr": "http"} {
		if _, p, _ := strings.Cut(digStr(cfg, "node", key), ":"); p != strconv.Itoa(declared[port]) {
			t.Errorf("node.%s %s: port is not the container port %s (%d)", key, digStr(cfg, "node", key), port, declared[port])
		}
	}
	if dd := digStr(cfg, "node", "data_dir"); digStr(mounts[dd], "name") != "data" || digStr(volumes["data"], "pvc", "metadata", "name") != "data" {
		t.Errorf("node.data_dir %s is not the mount of the PersistentVolumeClaim template data", dd)
	}
	if pol := digStr(cfg, "policies"); mounts[pol] == nil || digStr(mounts[pol], "subPath") != "" {
		t.Errorf("policies %s: want a directory mount of the policies ConfigMap (a subPath mount never sees updates)", pol)
	}

	if bin == "" {
		t.Log("-short: tributary config check not run")
		return pods
	}
	checkRunFlags(t, bin, "container args", argv)
	ca := tlstest.NewCA(t, "cluster")
	for _, pod := range pods {
		t.Run("config check "+pod, func(t *testing.T) {
			podConfigCheck(t, bin, region, ns, pod, sts, objs, secrets, ca)
		})
	}
	return pods
}

// volumeSecrets returns the Secrets a volume holds: a secret volume's, or
// those of a projected volume's sources.
func volumeSecrets(v k8sObj) []string {
	if s := digStr(v, "secret", "secretName"); s != "" {
		return []string{s}
	}
	var out []string
	for _, src := range digList(v, "projected", "sources") {
		if s := digStr(src, "secret", "name"); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// podConfigCheck lays out pod's files under a temporary root as its volumes
// and its init container leave them (the init container's script runs for
// real), then runs `tributary config check` on its config with its env.
func podConfigCheck(t *testing.T, bin, region, ns, pod string, sts k8sObj, objs map[string]map[string]k8sObj, secrets map[string]k8sObj, ca *tlstest.CA) {
	root := t.TempDir()
	podSpec := digMap(sts, "spec", "template", "spec")
	volumes := map[string]k8sObj{}
	for _, v := range digList(podSpec, "volumes") {
		volumes[digStr(v, "name")] = v.(k8sObj)
	}
	cert := ca.Node(region, pod)
	hashKey := make([]byte, 32)
	rand.Read(hashKey)
	tokenSum := sha256.Sum256([]byte("a-token"))
	// What this test puts in each Secret in place of the placeholders.
	secretFiles := func(name string) map[string][]byte {
		files := map[string][]byte{}
		for k := range digMap(secrets[name], "stringData") {
			files[k] = []byte("placeholder of another pod\n")
		}
		switch {
		case strings.HasPrefix(name, "tributary-tls-"):
			files["ca.pem"], _ = os.ReadFile(cert.Files.CA)
			files[pod+".pem"], _ = os.ReadFile(cert.Files.Cert)
			files[pod+"-key.pem"], _ = os.ReadFile(cert.Files.Key)
		case name == "tributary-tokens":
			files["tokens.yaml"] = []byte("- {name: grafana, role: read, sha256: " + hex.EncodeToString(tokenSum[:]) + "}\n")
		case name == "tributary-hash-key":
			files["hash.key"] = []byte(hex.EncodeToString(hashKey))
		}
		return files
	}
	env := os.Environ()
	mountFor := func(c any) (rewrite func(string) string) {
		var paths []string
		for _, m := range digList(c, "volumeMounts") {
			mp := digStr(m, "mountPath")
			paths = append(paths, mp)
			v := volumes[digStr(m, "name")]
			dst := filepath.Join(root, mp)
			switch {
			case v == nil: // the PersistentVolumeClaim
				os.MkdirAll(dst, 0o700)
			case digStr(v, "configMap", "name") != "":
				data := digMap(objs["ConfigMap"][digStr(v, "configMap", "name")], "data")
				if sub := digStr(m, "subPath"); sub != "" {
					os.MkdirAll(filepath.Dir(dst), 0o755)
					os.WriteFile(dst, []byte(data[sub].(string)), 0o644)
				} else {
					os.MkdirAll(dst, 0o755)
					for k, val := range data {
						os.WriteFile(filepath.Join(dst, k), []byte(val.(string)), 0o644)
					}
				}
			case len(volumeSecrets(v)) > 0:
				// Secret volumes with fsGroup: group-readable, as the kubelet makes them.
				os.MkdirAll(dst, 0o755)
				for _, name := range volumeSecrets(v) {
					for k, val := range secretFiles(name) {
						os.WriteFile(filepath.Join(dst, k), val, 0o440)
					}
				}
			default:
				os.MkdirAll(dst, 0o777)
			}
		}
		slices.SortFunc(paths, func(a, b string) int { return len(b) - len(a) })
		return func(s string) string {
			// Longest mount paths first; a path once rewritten is not rewritten again.
			var b strings.Builder
			for i := 0; i < len(s); {
				hit := ""
				for _, p := range paths {
					if strings.HasPrefix(s[i:], p) {
						hit = p
						break
					}
				}
				if hit == "" {
					b.WriteByte(s[i])
					i++
					continue
				}
				b.WriteString(filepath.Join(root, hit))
				i += len(hit)
			}
			return b.String()
		}
	}
	podEnv := func(c any) []string {
		out := slices.Clone(env)
		for _, e := range digList(c, "env") {
			name := digStr(e, "name")
			switch {
			case dig(e, "value") != nil:
				out = append(out, name+"="+digStr(e, "value"))
			case digStr(e, "valueFrom", "fieldRef", "fieldPath") == "metadata.name":
				out = append(out, name+"="+pod)
			case digStr(e, "valueFrom", "fieldRef", "fieldPath") == "metadata.namespace":
				out = append(out, name+"="+ns)
			case digMap(e, "valueFrom", "secretKeyRef") != nil:
				ref := digMap(e, "valueFrom", "secretKeyRef")
				out = append(out, name+"="+digStr(digMap(secrets[digStr(ref, "name")], "stringData"), digStr(ref, "key")))
			default:
				t.Fatalf("env %s: %v is not understood by this test", name, e)
			}
		}
		return out
	}

	for _, ic := range digList(podSpec, "initContainers") {
		rewrite := mountFor(ic)
		var argv []string
		for _, a := range digList(ic, "command") {
			argv = append(argv, rewrite(a.(string)))
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = podEnv(ic)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("init container %s: %v\n%s", digStr(ic, "name"), err, out)
		}
	}
	main := digMap(podSpec, "containers", 0)
	rewrite := mountFor(main)
	var argv []string
	for _, a := range digList(main, "args") {
		argv = append(argv, a.(string))
	}
	cfgPath := filepath.Join(root, argv[2])
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte(rewrite(string(b))), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "config", "check", cfgPath)
	cmd.Env = podEnv(main)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": ok (") {
		t.Errorf("tributary config check (pod %s): %v\n%s", pod, err, out)
	}
	for _, s := range digMap(secrets["tributary-kafka-credentials"], "stringData") {
		if strings.Contains(string(out), s.(string)) {
			t.Errorf("config check printed a secret value:\n%s", out)
		}
	}
	polDir := rewrite(digStr(decodeConfigText(t, string(b)), "policies"))
	entries, err := filepath.Glob(filepath.Join(polDir, "*.yaml"))
	if err != nil || len(entries) == 0 {
		t.Fatalf("no policy files in %s", polDir)
	}
	if out, err := exec.Command(bin, append([]string{"policy", "lint"}, entries...)...).CombinedOutput(); err != nil {
		t.Errorf("tributary policy lint on the policies ConfigMap: %v\n%s", err, out)
	}
}

func decodeConfigText(t *testing.T, text string) k8sObj {
	t.Helper()
	var o k8sObj
	if err := yaml.Unmarshal([]byte(text), &o); err != nil {
		t.Fatal(err)
	}
	return o
}

// shippedConfig is a node config this repository ships.
type shippedConfig struct {
	name    string
	doc     k8sObj
	ports   map[string]string // node.raft_addr, node.http_addr -> port
	dataDir string
}

// shippedConfigs returns the config of the Kubernetes base (first) and the
// systemd example.
func shippedConfigs(t *testing.T) []shippedConfig {
	t.Helper()
	var texts [][2]string
	for _, o := range readYAMLDocs(t, k8sDir+"/base/configmap-config.yaml") {
		texts = append(texts, [2]string{"deploy/kubernetes/base/configmap-config.yaml", digStr(o, "data", "config.yaml")})
	}
	b, err := os.ReadFile(systemdConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	texts = append(texts, [2]string{"deploy/systemd/config.example.yaml", string(b)})
	var out []shippedConfig
	for _, tx := range texts {
		doc := decodeConfigText(t, tx[1])
		sc := shippedConfig{name: tx[0], doc: doc, ports: map[string]string{}, dataDir: digStr(doc, "node", "data_dir")}
		for _, k := range []string{"raft_addr", "http_addr"} {
			_, port, _ := strings.Cut(digStr(doc, "node", k), ":")
			sc.ports["node."+k] = port
		}
		out = append(out, sc)
	}
	return out
}
