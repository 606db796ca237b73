package pubsubbridge

import (
	"context"
	"slices"
	"strconv"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/internal/governance"
)

// Headers the bridge writes on every record, as Google's Pub/Sub source
// connector for Kafka Connect does with its metadata, plus tributary's own.
const (
	HeaderMessageID       = "pubsub-message-id"
	HeaderPublishTime     = "pubsub-publish-time" // RFC 3339 with nanoseconds, UTC
	HeaderOrderingKey     = "pubsub-ordering-key" // only when the message has one
	HeaderDeliveryAttempt = "pubsub-delivery-attempt"
	HeaderOrigin          = governance.HeaderOrigin // BridgeConfig.Source

	// HeaderError and HeaderSourceSubscription are added to quarantined records
	// (Kafka headers, or attributes on the dead-letter topic).
	HeaderError              = "tributary-error"
	HeaderSourceSubscription = "tributary-source-subscription"
)

// Attributes Pub/Sub sets on messages of a topic with a schema.
const (
	AttrSchemaName     = "googclient_schemaname"       // projects/P/schemas/S
	AttrSchemaRevision = "googclient_schemarevisionid" // revision id
	AttrSchemaEncoding = "googclient_schemaencoding"   // JSON or BINARY
)

// SchemaMapper maps a message's Pub/Sub schema revision to a registry subject
// and version, returning s with Subject and Version set. It is called only for
// messages that carry googclient_schemaname, concurrently, before the
// Transformer. Errors are classified as the Transformer's.
type SchemaMapper func(ctx context.Context, s governance.PubSubSchema) (governance.PubSubSchema, error)

// mapping turns Pub/Sub messages into records (the Kafka Connect connector's
// mapping, see Record).
type mapping struct {
	topic, keyAttribute, origin, subscription string
	// scope is the subscription as the pipeline names it: the record's
	// SourceTopic, which policies' applies_to.topics match.
	scope string
}

// record maps m to the record the Transformer sees: Key is the key_attribute's
// value, else the ordering key, else nil (the partition is computed from the
// key after the Transformer ran); Headers are the attributes (sorted by name),
// then pubsub-message-id, pubsub-publish-time, pubsub-ordering-key,
// pubsub-delivery-attempt and tributary-origin.
func (mp *mapping) record(m *pubsub.Message) *governance.Record {
	rec := &governance.Record{
		SourceTopic:  mp.scope,
		TargetTopic:  mp.topic,
		Value:        m.Data,
		Timestamp:    m.PublishTime,
		Attributes:   m.Attributes,
		Subscription: mp.subscription,
		MessageID:    m.ID,
	}
	if rec.Value == nil {
		rec.Value = []byte{} // an empty message is not a tombstone
	}
	if v, ok := m.Attributes[mp.keyAttribute]; ok && mp.keyAttribute != "" {
		rec.Key = []byte(v)
	} else if m.OrderingKey != "" {
		rec.Key = []byte(m.OrderingKey)
	}
	if m.Attributes != nil {
		rec.Schema = governance.PubSubSchema{
			Name:       m.Attributes[AttrSchemaName],
			RevisionID: m.Attributes[AttrSchemaRevision],
			Encoding:   m.Attributes[AttrSchemaEncoding],
		}
	}
	rec.Headers = mp.headers(m, 0)
	return rec
}

// headers maps attributes and metadata to headers, with room for extra more.
func (mp *mapping) headers(m *pubsub.Message, extra int) []kafka.Header {
	hs := make([]kafka.Header, 0, len(m.Attributes)+5+extra)
	if len(m.Attributes) > 0 {
		keys := make([]string, 0, len(m.Attributes))
		for k := range m.Attributes {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			hs = append(hs, kafka.Header{Key: k, Value: []byte(m.Attributes[k])})
		}
	}
	hs = append(hs,
		kafka.Header{Key: HeaderMessageID, Value: []byte(m.ID)},
		kafka.Header{Key: HeaderPublishTime, Value: m.PublishTime.UTC().AppendFormat(nil, time.RFC3339Nano)},
	)
	if m.OrderingKey != "" {
		hs = append(hs, kafka.Header{Key: HeaderOrderingKey, Value: []byte(m.OrderingKey)})
	}
	if m.DeliveryAttempt != nil {
		hs = append(hs, kafka.Header{Key: HeaderDeliveryAttempt, Value: strconv.AppendInt(nil, int64(*m.DeliveryAttempt), 10)})
	}
	if mp.origin != "" {
		hs = append(hs, kafka.Header{Key: HeaderOrigin, Value: []byte(mp.origin)})
	}
	return hs
}

// message is the Kafka record of rec, for the given partition.
func message(rec *governance.Record, partition int32) *kafka.Message {
	topic := rec.TargetTopic
	return &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: partition},
		Key:            rec.Key,
		Value:          rec.Value,
		Headers:        rec.Headers,
		Timestamp:      rec.Timestamp,
		TimestampType:  kafka.TimestampCreateTime,
	}
}

// Record-batch framing that max.message.bytes counts besides the payload (Kafka
// message format v2): the 61-byte batch header, a record's varints (length,
// attributes, timestamp and offset deltas, key and value lengths, header count)
// at their widest, and each header's two length varints.
const (
	batchOverhead  = 61 + 5 + 1 + 10 + 5 + 5 + 5 + 5
	headerOverhead = 10
)

// recordSize is an upper bound of the uncompressed size of a batch holding only
// m, which is what the broker compares with max.message.bytes when the
// producer does not compress.
func recordSize(m *kafka.Message) int {
	n := batchOverhead + len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += headerOverhead + len(h.Key) + len(h.Value)
	}
	return n
}
