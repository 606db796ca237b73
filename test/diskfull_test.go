package test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/test/harness"
)

// TestDataDirFullNodeDeclinesTasks runs three nodes, one of them (n3) with its
// data_dir on a small tmpfs of its own, during a steady stream. The test fills
// that file system below node.min_free_bytes: n3 must give its tasks up to the
// others (the leader moves them as from a dead node), say why on /readyz (503
// naming data_dir and the free space), in /v1/status (its own disk section and
// the cluster's member list) and in its log, and stay up. Once the file is
// removed, n3 takes tasks again. Every record lands exactly once, in order.
func TestDataDirFullNodeDeclinesTasks(t *testing.T) {
	source, target := harness.Brokers(t)
	if binPath == "" {
		t.Skip("tributary binary not built: real brokers not configured")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs for data_dir needs root")
	}
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	// raft-wal preallocates 64 MiB log segments: 160 MiB holds one with room.
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("mount -t tmpfs not permitted here: %v: %s", err, out)
	}
	t.Cleanup(func() { // after the nodes' cleanups (LIFO): nothing holds it then
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s; detaching it lazily", mnt, err, out)
			_ = exec.Command("umount", "-l", mnt).Run()
		}
	})

	topic := harness.UniqueName(t, "diskfull")
	createTopic(t, source, topic, partitions, nil)
	const tasks = 6
	c := newCluster(t, []nodeSpec{{"n1", "eu"}, {"n2", "eu"}, {"n3", "eu"}},
		fmt.Sprintf(euClusters, source, target), fmt.Sprintf(`  - name: %s
    source: {kafka: regional}
    topics: {include: ['%s']}
    tasks: %d
    refresh_interval: 2s
`, topic, topic, tasks))
	const minFree = 32 << 20
	cfg, err := os.ReadFile(c.cfgs["n3"])
	if err != nil {
		t.Fatal(err)
	}
	text, n := replaceLine(string(cfg), "  data_dir: ", fmt.Sprintf("  data_dir: %s/data\n  min_free_bytes: %d", mnt, minFree))
	if n != 1 {
		t.Fatalf("n3's config has %d data_dir lines:\n%s", n, cfg)
	}
	if err := os.WriteFile(c.cfgs["n3"], []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c.startAll()
	c.waitAllRunning(60*time.Second, tasks)
	harness.Eventually(t, 60*time.Second, "n3 runs tasks", func() error {
		if r := c.running(); len(r["n3"]) == 0 {
			return fmt.Errorf("running: %v", r)
		}
		return nil
	})

	const total = 100_000
	base := recentBase()
	s := startStream(t, source, topic, total, 500, 200*time.Millisecond, base)
	dst := "regional." + topic
	harness.Eventually(t, 60*time.Second, "the stream flowing", func() error {
		if n := countCommitted(t, target, dst); n < 5000 {
			return fmt.Errorf("%d mirrored", n)
		}
		return nil
	})

	// Fill the file system, leaving less than min_free_bytes.
	free := statfsFree(t, mnt)
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, free-minFree/2); err != nil {
		t.Fatalf("filling %s: %v", mnt, err)
	}
	f.Close()
	filled := time.Now()
	t.Logf("filled %s: %d MiB free of 160 MiB (node.min_free_bytes %d MiB)", mnt, statfsFree(t, mnt)>>20, minFree>>20)

	c.waitAllRunning(30*time.Second, tasks, "n3")
	harness.Eventually(t, 15*time.Second, "n3 runs nothing", func() error {
		if r := c.running(); len(r["n3"]) > 0 {
			return fmt.Errorf("n3 runs %v", r["n3"])
		}
		return nil
	})
	t.Logf("all %d tasks on n1 and n2 %v after the disk filled", tasks, time.Since(filled).Round(100*time.Millisecond))
	resp, err := c.nodes["n3"].get("/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(body), "data_dir "+mnt+"/data") || !strings.Contains(string(body), "MiB free, below node.min_free_bytes 32.0 MiB") {
		t.Errorf("n3 /readyz: %d %q, want 503 naming data_dir and its free space", resp.StatusCode, body)
	}
	st, err := c.status("n3")
	if err != nil {
		t.Fatal(err)
	}
	if st.Disk.Unhealthy == "" || st.Disk.FreeBytes >= minFree || st.Disk.MinFreeBytes != minFree || st.Disk.DataDir != mnt+"/data" {
		t.Errorf("n3 /v1/status disk: %+v, want the reason, free < %d and min_free_bytes", st.Disk, minFree)
	}
	harness.Eventually(t, 10*time.Second, "the cluster's member list shows n3 unhealthy", func() error {
		st, err := c.status("n1")
		if err != nil {
			return err
		}
		for _, m := range st.Cluster.Members {
			if m.ID == "n3" {
				if !strings.Contains(m.Unhealthy, "data_dir") {
					return fmt.Errorf("n3: %+v", m)
				}
				if !m.Alive {
					return fmt.Errorf("n3 marked dead, want alive and unhealthy: %+v", m)
				}
				return nil
			}
		}
		return fmt.Errorf("n3 not a member: %+v", st.Cluster.Members)
	})
	if out, err := exec.Command(binPath, "status", "--addr", c.http["n1"]).CombinedOutput(); err != nil || !strings.Contains(string(out), "n3 declines tasks: data_dir "+mnt+"/data has ") {
		t.Errorf("tributary status (%v) does not say why n3 declines tasks:\n%s", err, out)
	}
	if out := c.nodes["n3"].output(); !strings.Contains(out, "data_dir is short of free space") || !strings.Contains(out, "data_dir="+mnt+"/data") || !strings.Contains(out, "free_bytes=") {
		t.Errorf("n3's log has no line naming data_dir and its free space")
	}

	// While the disk stays full, n3 keeps declining: no flapping, no exit.
	for end := time.Now().Add(8 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		if !c.alive("n3") {
			t.Fatalf("n3 exited with its disk full: %v", c.nodes["n3"].err)
		}
		if r := c.running(); len(r["n3"]) > 0 {
			t.Fatalf("n3 runs %v again while its disk is still full", r["n3"])
		}
	}

	// Space returns: n3 takes tasks again (it is eligible again, so the
	// leader rebalances at once).
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	freed := time.Now()
	harness.Eventually(t, 30*time.Second, "n3 runs tasks again", func() error {
		if r := c.running(); len(r["n3"]) == 0 {
			return fmt.Errorf("running: %v", r)
		}
		return nil
	})
	t.Logf("n3 runs tasks again %v after the space returned", time.Since(freed).Round(100*time.Millisecond))
	c.nodes["n3"].waitReady(30 * time.Second)
	if !c.alive("n3") {
		t.Fatalf("n3 exited: %v", c.nodes["n3"].err)
	}

	s.wait(t)
	c.waitAllRunning(30*time.Second, tasks)
	got := readAll(t, target, dst, total, 2*time.Minute)
	verifyExactlyOnce(t, got, s.seq, topic, "regional", base, true)
}

// replaceLine replaces each line of text starting with prefix by repl and
// returns how many it replaced.
func replaceLine(text, prefix, repl string) (string, int) {
	lines := strings.Split(text, "\n")
	n := 0
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			lines[i] = repl
			n++
		}
	}
	return strings.Join(lines, "\n"), n
}

// statfsFree returns the bytes available on dir's file system.
func statfsFree(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}
