package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestTheLeaderRefusesBadBundles sends hostile proposals over HTTP to a real
// one-node cluster whose CheckBundle refuses data that is not "ok": each is
// refused with its status, logged and counted, and the active bundle stays.
func TestTheLeaderRefusesBadBundles(t *testing.T) {
	c := newCluster(t)
	cfg := c.config("solo", "eu", nil, nil)
	cfg.Bootstrap = []Peer{{ID: "solo", Addr: cfg.RaftAddr}}
	cfg.CheckBundle = func(active *PolicyBundle, p PolicyBundle) error {
		switch {
		case !strings.HasPrefix(string(p.Data), "ok"):
			return errors.New("data does not decode")
		case p.Hash != "h-"+string(p.Data):
			return RefuseBundle(RefusedHash, fmt.Errorf("claimed hash %q is not the data's", p.Hash))
		case active != nil && len(p.Data) < len(active.Data):
			return RefuseBundle(RefusedUnsafe, errors.New("removes a policy"))
		}
		return nil
	}
	tn := c.start(cfg)
	c.waitLeader(5 * time.Second)
	url := "http://" + cfg.HTTPAddr + "/v1/cluster/policy"
	post := func(version int64, data, hash string) (int, string) {
		b, _ := json.Marshal(policyCmd{Version: version, Data: []byte(data), Hash: hash, Source: "test"})
		return httpDo(t, http.MethodPost, url, string(b))
	}
	if code, body := post(1, "okay", "h-okay"); code != http.StatusOK {
		t.Fatalf("a good first bundle: %d %s", code, body)
	}
	refusals := []struct {
		name    string
		version int64
		data    string
		hash    string
		code    int
		reason  string
	}{
		{"a version of MaxInt64", math.MaxInt64, "okay2", "h-okay2", http.StatusUnprocessableEntity, RefusedVersion},
		{"a version jump", 5, "okay2", "h-okay2", http.StatusUnprocessableEntity, RefusedVersion},
		{"the active version again", 1, "okay2", "h-okay2", http.StatusConflict, RefusedStale},
		{"a negative version", -3, "okay2", "h-okay2", http.StatusUnprocessableEntity, RefusedVersion},
		{"garbage data", 2, "garbage", "h-garbage", http.StatusUnprocessableEntity, RefusedInvalid},
		{"a forged hash", 2, "okay2", "h-forged", http.StatusUnprocessableEntity, RefusedHash},
		{"a bundle removing policies", 2, "ok", "h-ok", http.StatusUnprocessableEntity, RefusedUnsafe},
	}
	for _, r := range refusals {
		t.Run(r.name+" is refused", func(t *testing.T) {
			before := testutil.ToFloat64(tn.n.m.bundleRefused.WithLabelValues(r.reason))
			code, body := post(r.version, r.data, r.hash)
			if code != r.code || !strings.Contains(body, "refused ("+r.reason+")") {
				t.Errorf("answer %d %s, want %d naming reason %s", code, body, r.code, r.reason)
			}
			if got := testutil.ToFloat64(tn.n.m.bundleRefused.WithLabelValues(r.reason)); got != before+1 {
				t.Errorf("tributary_policy_bundle_refused_total{reason=%q} = %v, want %v", r.reason, got, before+1)
			}
			if p := tn.n.PolicyState(); p.Bundle.Version != 1 || string(p.Bundle.Data) != "okay" {
				t.Errorf("active bundle changed to %+v", p.Bundle)
			}
		})
	}
	t.Run("a body over 1 MiB is 413", func(t *testing.T) {
		code, _ := post(2, "ok"+strings.Repeat("x", MaxPolicyBody), "h")
		if code != http.StatusRequestEntityTooLarge {
			t.Errorf("answer %d, want 413", code)
		}
		if got := testutil.ToFloat64(tn.n.m.bundleRefused.WithLabelValues(RefusedTooLarge)); got != 1 {
			t.Errorf("too_large refusals = %v, want 1", got)
		}
	})
	t.Run("a join request over 64 KiB is 413", func(t *testing.T) {
		body := `{"id": "x", "region": "eu", "raft_addr": "127.0.0.1:1", "http_addr": "` + strings.Repeat("x", 64<<10) + `"}`
		if code, _ := httpDo(t, http.MethodPost, "http://"+cfg.HTTPAddr+"/v1/cluster/join", body); code != http.StatusRequestEntityTooLarge {
			t.Errorf("answer %d, want 413", code)
		}
		if st := tn.n.Status(); len(st.Members) != 1 {
			t.Errorf("members %+v, want solo alone", st.Members)
		}
	})
	t.Run("the local propose path runs the same checks", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := tn.n.ProposePolicy(ctx, 2, []byte("okay2"), "h-forged", "test")
		var re *BundleRefusedError
		if !errors.As(err, &re) || re.Reason != RefusedHash {
			t.Errorf("ProposePolicy = %v, want a hash refusal", err)
		}
		if _, err := tn.n.ProposePolicy(ctx, 2, []byte("okay2"), "h-okay2", "test"); err != nil {
			t.Fatalf("a good second bundle: %v", err)
		}
		if p := tn.n.PolicyState(); p.Bundle.Version != 2 || string(p.Bundle.Data) != "okay2" {
			t.Errorf("active bundle %+v, want version 2", p.Bundle)
		}
	})
	t.Run("a refusal reaches a proposer on another node with its reason", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// What a follower's ProposePolicy sends the leader.
		err := tn.n.call(ctx, cfg.HTTPAddr, http.MethodPost, "/v1/cluster/policy", &policyCmd{Version: 3, Data: []byte("okay3"), Hash: "h-forged"}, nil, true)
		var re *BundleRefusedError
		if !errors.As(err, &re) || re.Reason != RefusedHash || !strings.Contains(err.Error(), "claimed hash") {
			t.Errorf("call = %v, want a hash refusal", err)
		}
	})
	if logs := c.logs.String(); !strings.Contains(logs, "policy bundle refused") || !strings.Contains(logs, "reason=hash") || !strings.Contains(logs, "from=") {
		t.Errorf("refusals not logged with proposer and reason:\n%s", logs)
	}
}
