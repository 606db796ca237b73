package pubsubbridge

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/internal/governance"
)

// maxAttributeValue is Pub/Sub's limit on an attribute value (1024 bytes).
const maxAttributeValue = 1024

// quarantine stores the raw message with its reason, in the dead-letter topic
// when one is configured, else in the Kafka quarantine topic, retrying every
// error in place until the deadline: a message whose quarantine write keeps
// failing is nacked (and redelivered) rather than lost. label is the metric's
// reason.
func (b *Bridge) quarantine(ctx context.Context, m *pubsub.Message, label string, rej *governance.RejectError, deadline time.Time) (outcome, reason string, err error) {
	write := b.quarantineKafka
	if b.dlq != nil {
		write = b.quarantinePubSub
	}
	never := func(error) bool { return false }
	if err := b.retry(ctx, deadline, never, func() error { return write(ctx, m, rej) }); err != nil {
		return "", nackQuarantine, fmt.Errorf("quarantining (%s): %w", rej.Reason, err)
	}
	b.m.quarantined.WithLabelValues(label).Inc()
	b.log.Debug("message quarantined", "message_id", m.ID, "reason", rej.Reason)
	return outcomeQuarantined, "", nil
}

// quarantineKafka writes the raw message to the Kafka quarantine topic (the
// target's, or that of the QuarantineSink's cluster in the project's region),
// keyed by subscription and message id so that a rewrite after a crash
// replaces the record in the compacted topic instead of adding one. Headers:
// tributary-error, tributary-source-subscription, then the record's mapped
// headers (attributes and pubsub-*).
func (b *Bridge) quarantineKafka(ctx context.Context, m *pubsub.Message, rej *governance.RejectError) error {
	hs := make([]kafka.Header, 0, len(m.Attributes)+7)
	hs = append(hs,
		kafka.Header{Key: HeaderError, Value: []byte(rej.Error())},
		kafka.Header{Key: HeaderSourceSubscription, Value: []byte(b.mp.subscription)},
	)
	hs = append(hs, b.mp.headers(m, 0)...)
	topic := b.cfg.QuarantineTopic
	value := m.Data
	if value == nil {
		value = []byte{}
	}
	msg := &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key:            []byte(b.mp.subscription + "/" + m.ID),
		Value:          value,
		Headers:        hs,
		Timestamp:      m.PublishTime,
		TimestampType:  kafka.TimestampCreateTime,
	}
	if b.qsink != nil {
		// Another cluster than the target's: not through the target's batcher.
		if errs := b.qsink.Produce(ctx, []*kafka.Message{msg}); errs != nil {
			return errs[0]
		}
		return nil
	}
	return b.produce(ctx, msg, false, "")
}

// quarantinePubSub publishes the raw message to the dead-letter topic with its
// attributes plus tributary-error, tributary-source-subscription,
// pubsub-message-id, pubsub-publish-time and pubsub-ordering-key, and waits
// until Pub/Sub has it. The ordering key is kept as an attribute only:
// publishing with it would need an ordered publisher and stall on failures.
func (b *Bridge) quarantinePubSub(ctx context.Context, m *pubsub.Message, rej *governance.RejectError) error {
	attrs := make(map[string]string, len(m.Attributes)+5)
	maps.Copy(attrs, m.Attributes)
	reason := rej.Error()
	if len(reason) > maxAttributeValue {
		reason = strings.ToValidUTF8(reason[:maxAttributeValue], "")
	}
	attrs[HeaderError] = reason
	attrs[HeaderSourceSubscription] = b.mp.subscription
	attrs[HeaderMessageID] = m.ID
	attrs[HeaderPublishTime] = m.PublishTime.UTC().Format(time.RFC3339Nano)
	if m.OrderingKey != "" {
		attrs[HeaderOrderingKey] = m.OrderingKey
	}
	if _, err := b.dlq.Publish(ctx, &pubsub.Message{Data: m.Data, Attributes: attrs}).Get(ctx); err != nil {
		return fmt.Errorf("publishing to dead-letter topic %s: %w", b.dlq, err)
	}
	return nil
}
