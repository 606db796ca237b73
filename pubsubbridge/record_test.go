package pubsubbridge

import (
	"bytes"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/internal/governance"
)

func TestMapping(t *testing.T) {
	published := time.Date(2026, 3, 1, 12, 30, 45, 123456789, time.FixedZone("CET", 3600))
	attempt := 3
	mp := &mapping{topic: "fleet.telemetry", keyAttribute: "vin", origin: "fleet", subscription: "projects/p/subscriptions/s"}
	for _, tc := range []struct {
		name    string
		msg     *pubsub.Message
		key     []byte
		headers []kafka.Header
	}{
		{
			name: "the key is the key attribute when the message has it",
			msg: &pubsub.Message{ID: "1", Data: []byte("d"), PublishTime: published, OrderingKey: "car-1",
				Attributes: map[string]string{"vin": "WVW123", "b": "2", "a": "1"}},
			key: []byte("WVW123"),
			headers: []kafka.Header{
				{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}, {Key: "vin", Value: []byte("WVW123")},
				{Key: HeaderMessageID, Value: []byte("1")},
				{Key: HeaderPublishTime, Value: []byte("2026-03-01T11:30:45.123456789Z")},
				{Key: HeaderOrderingKey, Value: []byte("car-1")},
				{Key: HeaderOrigin, Value: []byte("fleet")},
			},
		},
		{
			name: "else the ordering key",
			msg:  &pubsub.Message{ID: "2", Data: []byte("d"), PublishTime: published, OrderingKey: "car-1"},
			key:  []byte("car-1"),
			headers: []kafka.Header{
				{Key: HeaderMessageID, Value: []byte("2")},
				{Key: HeaderPublishTime, Value: []byte("2026-03-01T11:30:45.123456789Z")},
				{Key: HeaderOrderingKey, Value: []byte("car-1")},
				{Key: HeaderOrigin, Value: []byte("fleet")},
			},
		},
		{
			name: "else no key, and the delivery attempt when Pub/Sub gives it",
			msg: &pubsub.Message{ID: "3", Data: []byte("d"), PublishTime: published, DeliveryAttempt: &attempt,
				Attributes: map[string]string{"model": "x"}},
			key: nil,
			headers: []kafka.Header{
				{Key: "model", Value: []byte("x")},
				{Key: HeaderMessageID, Value: []byte("3")},
				{Key: HeaderPublishTime, Value: []byte("2026-03-01T11:30:45.123456789Z")},
				{Key: HeaderDeliveryAttempt, Value: []byte("3")},
				{Key: HeaderOrigin, Value: []byte("fleet")},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := mp.record(tc.msg)
			if !bytes.Equal(rec.Key, tc.key) || (rec.Key == nil) != (tc.key == nil) {
				t.Errorf("key %q, want %q", rec.Key, tc.key)
			}
			if !bytes.Equal(rec.Value, tc.msg.Data) {
				t.Errorf("value %q, want %q", rec.Value, tc.msg.Data)
			}
			if !rec.Timestamp.Equal(published) || rec.TargetTopic != "fleet.telemetry" || rec.MessageID != tc.msg.ID {
				t.Errorf("timestamp %v topic %q id %q", rec.Timestamp, rec.TargetTopic, rec.MessageID)
			}
			if len(rec.Headers) != len(tc.headers) {
				t.Fatalf("headers %v, want %v", rec.Headers, tc.headers)
			}
			for i, h := range tc.headers {
				if rec.Headers[i].Key != h.Key || !bytes.Equal(rec.Headers[i].Value, h.Value) {
					t.Errorf("header %d = %v, want %v", i, rec.Headers[i], h)
				}
			}
		})
	}
}

func TestMappingSchemaAttributesAndEmptyData(t *testing.T) {
	mp := &mapping{topic: "t"}
	rec := mp.record(&pubsub.Message{ID: "1", Attributes: map[string]string{
		AttrSchemaName: "projects/p/schemas/telemetry", AttrSchemaRevision: "a1b2", AttrSchemaEncoding: "JSON",
	}})
	want := governance.PubSubSchema{Name: "projects/p/schemas/telemetry", RevisionID: "a1b2", Encoding: "JSON"}
	if rec.Schema != want {
		t.Errorf("schema %+v, want %+v", rec.Schema, want)
	}
	if rec.Value == nil {
		t.Errorf("empty data mapped to a null value (a tombstone)")
	}
}

func TestRecordSizeIsAnUpperBound(t *testing.T) {
	topic := "t"
	m := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic}, Key: []byte("k"), Value: make([]byte, 1000),
		Headers: []kafka.Header{{Key: "h", Value: []byte("v")}}}
	// 61 (batch) + record: length, attributes, deltas, key, value (2-byte
	// varint), header count and one header: at most 1000+1+2+... bytes.
	if got := recordSize(m); got < 61+1000+1+1+2 || got > 61+1000+64 {
		t.Errorf("recordSize = %d", got)
	}
}
