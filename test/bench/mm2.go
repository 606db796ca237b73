package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// fetchMM2 downloads org.apache.kafka:connect-mirror, the Connect runtime
// and their runtime dependencies of Kafka version into
// CACHE/mm2-VERSION/libs (test/bench/pom.xml), unless already there, and
// returns that directory.
func fetchMM2(cache, version string) (string, error) {
	home := filepath.Join(cache, "mm2-"+version)
	libs := filepath.Join(home, "libs")
	if _, err := os.Stat(filepath.Join(libs, ".complete")); err == nil {
		return libs, nil
	}
	if _, err := exec.LookPath("mvn"); err != nil {
		return "", fmt.Errorf("MirrorMaker 2 needs mvn to fetch its jars (apt-get install maven): %w", err)
	}
	if err := os.MkdirAll(home, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(home, ".fetch.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(libs, ".complete")); err == nil {
		return libs, nil
	}
	tmp := filepath.Join(home, fmt.Sprintf("libs.tmp.%d", os.Getpid()))
	os.RemoveAll(tmp)
	logf("fetching org.apache.kafka:connect-mirror:%s and its runtime into %s", version, libs)
	cmd := exec.Command("mvn", "-q", "-B", "-Dstyle.color=never", "-f", "test/bench/pom.xml",
		"-Dkafka.version="+version, "dependency:copy-dependencies", "-DoutputDirectory="+tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("mvn could not fetch MirrorMaker 2 %s (run from the repository root): %v\n%s", version, err, out)
	}
	jars, _ := filepath.Glob(filepath.Join(tmp, "connect-mirror-"+version+".jar"))
	if len(jars) == 0 {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("connect-mirror-%s.jar missing after the fetch", version)
	}
	all, _ := filepath.Glob(filepath.Join(tmp, "*.jar"))
	var names []string
	for _, j := range all {
		names = append(names, filepath.Base(j))
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), []byte(strings.Join(names, "\n")+"\n"), 0o644); err != nil {
		return "", err
	}
	os.RemoveAll(libs)
	if err := os.Rename(tmp, libs); err != nil {
		return "", err
	}
	return libs, nil
}

// mm2Properties is the dedicated-mode config of one run: alias (unique per
// run, so every run starts from scratch: its own Connect topics and target
// topic "<alias>.<topic>") mirrors topic into the target cluster "central".
func mm2Properties(alias, source, target, topic string, tasks int, eos, tuned bool, restAddr string) string {
	var b strings.Builder
	p := func(k string, v any) { fmt.Fprintf(&b, "%s = %v\n", k, v) }
	p("clusters", alias+", central")
	p(alias+".bootstrap.servers", source)
	p("central.bootstrap.servers", target)
	p(alias+"->central.enabled", true)
	p(alias+"->central.topics", regexp.QuoteMeta(topic))
	p("central->"+alias+".enabled", false)
	p("tasks.max", tasks)
	// Single-broker clusters.
	for _, k := range []string{"replication.factor", "checkpoints.topic.replication.factor", "heartbeats.topic.replication.factor",
		"offset-syncs.topic.replication.factor", "offset.storage.replication.factor", "status.storage.replication.factor",
		"config.storage.replication.factor"} {
		p(k, 1)
	}
	if tuned {
		p("central.producer.linger.ms", 20)
		p("central.producer.batch.size", 1048576)
		p("central.producer.max.in.flight.requests.per.connection", 5)
		p(alias+".consumer.max.poll.records", 5000)
	}
	if eos {
		p("central.exactly.once.source.support", "enabled")
		p("dedicated.mode.enable.internal.rest", true)
		p("listeners", "http://"+restAddr)
		p(alias+".consumer.isolation.level", "read_committed")
	}
	return b.String()
}

const mm2Log4j = `status = warn
name = bench-mm2
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
`

func (s *suite) startMM2(sc scenario, source, topic, id, dir string) (*runHandle, error) {
	alias := "m" + nonAlnum.ReplaceAllString(id, "")
	rest, err := freeAddr()
	if err != nil {
		return nil, err
	}
	props := filepath.Join(dir, "mm2.properties")
	if err := os.WriteFile(props, []byte(mm2Properties(alias, source, s.target, topic, s.tasks, sc.eos, sc.tuned, rest)), 0o644); err != nil {
		return nil, err
	}
	l4j := filepath.Join(dir, "log4j2.properties")
	if err := os.WriteFile(l4j, []byte(mm2Log4j), 0o644); err != nil {
		return nil, err
	}
	h := &runHandle{dest: alias + "." + topic, started: time.Now()}
	// As bin/connect-mirror-maker.sh runs it (kafka-run-class.sh's JVM flags).
	p, err := startProc("mirrormaker2", filepath.Join(dir, "mm2.log"), nil, "java",
		"-Xms256M", "-Xmx2G", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
		"-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent", "-XX:MaxInlineLevel=15",
		"-Djava.awt.headless=true", "-Dlog4j2.configurationFile="+l4j,
		"-cp", filepath.Join(s.mm2Libs, "*"), "org.apache.kafka.connect.mirror.MirrorMaker", props)
	if err != nil {
		return nil, err
	}
	h.p = p
	h.cleanup = func() {
		p.stop(30 * time.Second)
		s.deleteTargetTopics(alias)
		if _, err := deleteTopics(s.source, func(t string) bool {
			return strings.Contains(t, alias) || strings.HasPrefix(t, "mm2-offset-syncs.") || t == "heartbeats"
		}); err != nil {
			logf("cleanup: deleting MirrorMaker 2's source topics: %v", err)
		}
	}
	h.verify = func() error { return verifyMM2Log(p.log, sc.eos, sc.tuned) }
	return h, nil
}

// verifyMM2Log checks in MirrorMaker 2's log that what the scenario
// configures took effect: exactly-once source support and transactional
// task producers (eos), the producer and consumer tuning (tuned).
func verifyMM2Log(path string, eos, tuned bool) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	log := string(b)
	var want []string
	if eos {
		want = append(want, "exactly.once.source.support = enabled")
		if !regexp.MustCompile(`transactional\.id = \S*MirrorSourceConnector-\d`).MatchString(log) {
			return fmt.Errorf("MirrorMaker 2 exactly-once: no MirrorSourceConnector task producer with a transactional.id in %s", path)
		}
	}
	if tuned {
		want = append(want, "linger.ms = 20", "batch.size = 1048576", "max.poll.records = 5000")
	}
	for _, w := range want {
		if !strings.Contains(log, w) {
			return fmt.Errorf("MirrorMaker 2: %q not in its log %s: the setting did not take effect", w, path)
		}
	}
	return nil
}
