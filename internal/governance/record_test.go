package governance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// step is a Transformer that marks the record with its name and returns err.
type step struct {
	name string
	err  error
}

func (s step) Transform(_ context.Context, rec *Record) error {
	rec.Headers = append(rec.Headers, kafka.Header{Key: s.name})
	return s.err
}

func TestChain(t *testing.T) {
	errOutage := errors.New("registry unavailable")
	blocked := Reject("blocked", "field ssn")
	tests := []struct {
		name    string
		chain   Chain
		wantRan []string
		wantErr error
	}{
		{"an empty chain changes nothing", Chain{}, nil, nil},
		{"every step runs, in order, when none fails", Chain{step{name: "translate"}, step{name: "validate"}, step{name: "mask"}}, []string{"translate", "validate", "mask"}, nil},
		{"the first error stops the chain and is returned", Chain{step{name: "translate"}, step{name: "validate", err: errOutage}, step{name: "mask", err: blocked}}, []string{"translate", "validate"}, errOutage},
		{"a rejection ends the chain and stays a rejection", Chain{step{name: "translate", err: blocked}, step{name: "mask"}}, []string{"translate"}, blocked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &Record{}
			err := tt.chain.Transform(context.Background(), rec)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			var ran []string
			for _, h := range rec.Headers {
				ran = append(ran, h.Key)
			}
			if !slices.Equal(ran, tt.wantRan) {
				t.Errorf("ran %v, want %v", ran, tt.wantRan)
			}
		})
	}
}

func TestAsReject(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantReason string // "" when err is no rejection
	}{
		{"a rejection is one", Reject("incompatible-schema", "subject %q", "eu.orders-value"), "incompatible-schema"},
		{"a wrapped rejection is found", fmt.Errorf("pipeline eu-orders: %w", Reject("blocked", "field ssn")), "blocked"},
		{"an outage is no rejection", errors.New("connection refused"), ""},
		{"waiting for the bundle is no rejection", ErrNoBundle, ""},
		{"no error is no rejection", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			re, ok := AsReject(tt.err)
			if ok != (tt.wantReason != "") || (ok && re.Reason != tt.wantReason) {
				t.Fatalf("AsReject(%v) = %v, %v; want reason %q", tt.err, re, ok, tt.wantReason)
			}
		})
	}
	if got := Reject("incompatible-schema", "subject %q breaks BACKWARD", "eu.orders-value").Error(); got != `incompatible-schema: subject "eu.orders-value" breaks BACKWARD` {
		t.Errorf("Error() = %q", got)
	}
}
