package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-dev/tributary/test/harness"
)

// TestRegistryServeKeepsSchemasInItsDataFile runs `tributary registry serve`
// twice on the same data file: a schema registered with the first is served by
// the second under the same id.
func TestRegistryServeKeepsSchemasInItsDataFile(t *testing.T) {
	data := filepath.Join(t.TempDir(), "registry.json")
	addr, err := freeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	serve := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"registry", "serve", "--addr", addr, "--data", data}, io.Discard, io.Discard)
		}()
		harness.Eventually(t, 10*time.Second, "registry serving", func() error {
			resp, err := http.Get("http://" + addr + "/subjects")
			if err != nil {
				return err
			}
			resp.Body.Close()
			return nil
		})
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("registry serve returned %v", err)
			}
		}
	}
	stop := serve()
	resp, err := http.Post("http://"+addr+"/subjects/payments-value/versions", "application/vnd.schemaregistry.v1+json",
		bytes.NewReader([]byte(`{"schema":"{\"type\":\"record\",\"name\":\"P\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}"}`)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"id"`) {
		t.Fatalf("register: %d %s", resp.StatusCode, b)
	}
	stop()

	stop = serve()
	defer stop()
	resp, err = http.Get("http://" + addr + "/subjects/payments-value/versions/latest")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(got), `"version":1`) {
		t.Fatalf("after restart: %d %s", resp.StatusCode, got)
	}
	var before, after struct{ ID int }
	json.Unmarshal(b, &before)
	json.Unmarshal(got, &after)
	if before.ID == 0 || before.ID != after.ID {
		t.Errorf("after restart the id changed: registered %s, now %s", b, got)
	}
}

func TestRegistryServeUsage(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"registry"}, io.Discard, &stderr)
	if code := exitCode(err, io.Discard); code != 2 {
		t.Fatalf("tributary registry: exit %d, want 2", code)
	}
}
