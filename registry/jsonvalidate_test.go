package registry

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riferrei/srclient"
)

const telemetryV1 = `{"type":"object","properties":{
  "vin":{"type":"string","minLength":17,"maxLength":17},
  "speed_kmh":{"type":"number","minimum":0},
  "driver":{"$ref":"driver.json"}},
 "required":["vin","speed_kmh"]}`

const telemetryV2 = `{"type":"object","properties":{
  "vin":{"type":"string","minLength":17,"maxLength":17},
  "speed_kmh":{"type":"number","minimum":0},
  "fuel_pct":{"type":"number","minimum":0,"maximum":100}},
 "required":["vin","speed_kmh","fuel_pct"]}`

const driverSchema = `{"type":"object","properties":{"email":{"type":"string","confluent:tags":["PII"]}},"required":["email"]}`

func TestJSONValidator(t *testing.T) {
	reg := newTestRegistry(t, nil)
	sr := reg.sr()
	ctx := context.Background()
	mustCreate(t, sr, "driver", driverSchema, srclient.Json)
	idV1 := mustCreate(t, sr, "fleet.telemetry-value", telemetryV1, srclient.Json,
		srclient.Reference{Name: "driver.json", Subject: "driver", Version: 1})
	mustCreate(t, sr, "orders-value", orderV1, srclient.Avro)
	mustCreate(t, sr, "broken-value", `{"type":"object","properties":{"a":{"$ref":"elsewhere.json"}}}`, srclient.Json)

	v := NewJSONValidator(reg.client(t))
	s1, err := v.Schema(ctx, "fleet.telemetry-value", 1)
	if err != nil {
		t.Fatal(err)
	}
	if s1.ID != idV1 || s1.Version != 1 || s1.Subject != "fleet.telemetry-value" {
		t.Errorf("schema = id %d %s v%d, want id %d v1", s1.ID, s1.Subject, s1.Version, idV1)
	}
	good := `{"vin":"WVWZZZ1JZXW000001","speed_kmh":88.5,"driver":{"email":"a@b.example"}}`
	if err := s1.Validate([]byte(good)); err != nil {
		t.Errorf("valid document: %v", err)
	}
	for doc, want := range map[string]string{
		`{"vin":"short","speed_kmh":1}`:                                   "at /vin:",
		`{"vin":"WVWZZZ1JZXW000001","speed_kmh":"fast"}`:                  "at /speed_kmh: got string, want number",
		`{"vin":"WVWZZZ1JZXW000001"}`:                                     "missing property 'speed_kmh'",
		`{"vin":"WVWZZZ1JZXW000001","speed_kmh":1,"driver":{}}`:           "at /driver: missing property 'email'", // through the reference
		`{"vin":"WVWZZZ1JZXW000001","speed_kmh":-1,"driver":{"email":1}}`: "at /speed_kmh",
		`{"vin":`: "not JSON",
	} {
		err := s1.Validate([]byte(doc))
		re := recordError(t, err, ReasonSchemaInvalid)
		if !strings.Contains(re.Msg, want) || (want != "not JSON" && !strings.Contains(re.Msg, `subject "fleet.telemetry-value" version 1`)) {
			t.Errorf("Validate(%s) = %q, want it to mention %q and the subject version", doc, re.Msg, want)
		}
	}

	t.Run("latest follows new versions after the TTL", func(t *testing.T) {
		now := time.Now()
		v.now = func() time.Time { return now }
		l, err := v.Schema(ctx, "fleet.telemetry-value", 0)
		if err != nil || l.Version != 1 {
			t.Fatalf("latest = %v, %v; want version 1", l, err)
		}
		setCompat(t, reg, "fleet.telemetry-value", "NONE")
		mustCreate(t, sr, "fleet.telemetry-value", telemetryV2, srclient.Json)
		if l, _ := v.Schema(ctx, "fleet.telemetry-value", 0); l.Version != 1 {
			t.Errorf("latest re-read before the TTL: version %d", l.Version)
		}
		now = now.Add(defaultLatestTTL)
		l, err = v.Schema(ctx, "fleet.telemetry-value", 0)
		if err != nil || l.Version != 2 {
			t.Fatalf("latest after the TTL = %v, %v; want version 2", l, err)
		}
		if err := l.Validate([]byte(`{"vin":"WVWZZZ1JZXW000001","speed_kmh":1}`)); err == nil {
			t.Error("version 2 requires fuel_pct")
		}
	})

	t.Run("missing subjects, versions and wrong types are record errors", func(t *testing.T) {
		for _, c := range []struct {
			subject string
			version int
			want    string
		}{
			{"no-such-subject", 0, `subject "no-such-subject" has no version`},
			{"no-such-subject", 3, `subject "no-such-subject" version 3 is not in`},
			{"fleet.telemetry-value", 9, `version 9 is not in`},
			{"orders-value", 1, "is AVRO, not a JSON Schema"},
			{"broken-value", 1, "does not compile as JSON Schema"},
		} {
			_, err := v.Schema(ctx, c.subject, c.version)
			re := recordError(t, err, ReasonUnknownSubjectVersion)
			if !strings.Contains(re.Msg, c.want) {
				t.Errorf("Schema(%s, %d) = %q, want %q", c.subject, c.version, re.Msg, c.want)
			}
		}
	})

	t.Run("an outage is not cached and not a record error", func(t *testing.T) {
		v := NewJSONValidator(reg.client(t))
		reg.stop()
		_, err := v.Schema(ctx, "fleet.telemetry-value", 1)
		var re *RecordError
		if err == nil || errors.As(err, &re) {
			t.Fatalf("registry down: err = %v, want a non-record error", err)
		}
		reg.restart()
		if _, err := v.Schema(ctx, "fleet.telemetry-value", 1); err != nil {
			t.Fatalf("after the registry came back: %v", err)
		}
	})

	t.Run("the first use of latest reads the registry once", func(t *testing.T) {
		v := NewJSONValidator(reg.client(t))
		reg.reset()
		l, err := v.Schema(ctx, "fleet.telemetry-value", 0)
		if err != nil || l.Version != 2 {
			t.Fatalf("latest = %v, %v; want version 2", l, err)
		}
		if n := reg.count("GET /subjects/fleet.telemetry-value/versions/"); n != 1 {
			t.Errorf("%d reads of the subject's versions, want 1 (latest, compiled from that answer)", n)
		}
	})

	t.Run("concurrent first uses fetch once", func(t *testing.T) {
		v := NewJSONValidator(reg.client(t))
		reg.reset()
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				if _, err := v.Schema(ctx, "fleet.telemetry-value", 2); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if n := reg.count("GET /subjects/fleet.telemetry-value/versions/2"); n != 1 {
			t.Errorf("%d fetches of the version, want 1", n)
		}
	})
}

func setCompat(t *testing.T, reg *testRegistry, subject, level string) {
	t.Helper()
	if _, err := reg.sr().ChangeSubjectCompatibilityLevel(subject, srclient.CompatibilityLevel(level)); err != nil {
		t.Fatal(err)
	}
}
