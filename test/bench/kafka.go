package main

import (
	"context"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

func newAdmin(bootstrap string) (*kafka.AdminClient, error) {
	return kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "enable.metrics.push": false})
}

func createTopic(bootstrap, topic string, parts int) error {
	a, err := newAdmin(bootstrap)
	if err != nil {
		return err
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := a.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: topic, NumPartitions: parts, ReplicationFactor: 1}})
	if err != nil {
		return fmt.Errorf("creating topic %s on %s: %w", topic, bootstrap, err)
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError && r.Error.Code() != kafka.ErrTopicAlreadyExists {
			return fmt.Errorf("creating topic %s on %s: %w", topic, bootstrap, r.Error)
		}
	}
	return nil
}

// deleteTopics deletes the topics of the cluster that match, best effort
// (cleanup after a run: the next one must not pay for their disk).
func deleteTopics(bootstrap string, match func(string) bool) ([]string, error) {
	a, err := newAdmin(bootstrap)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	md, err := a.GetMetadata(nil, true, 30000)
	if err != nil {
		return nil, err
	}
	var del []string
	for t := range md.Topics {
		if match(t) {
			del = append(del, t)
		}
	}
	if len(del) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := a.DeleteTopics(ctx, del)
	if err != nil {
		return del, err
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError && r.Error.Code() != kafka.ErrUnknownTopicOrPart {
			return del, fmt.Errorf("deleting %s: %w", r.Topic, r.Error)
		}
	}
	return del, nil
}

// partitionsOf is the partition count of topic, 0 if it does not exist.
func partitionsOf(a *kafka.AdminClient, topic string) int {
	md, err := a.GetMetadata(&topic, false, 5000)
	if err != nil {
		return 0
	}
	t, ok := md.Topics[topic]
	if !ok || t.Error.Code() != kafka.ErrNoError {
		return 0
	}
	return len(t.Partitions)
}

func newProducer(bootstrap string, extra kafka.ConfigMap) (*kafka.Producer, error) {
	cm := kafka.ConfigMap{
		"bootstrap.servers":   bootstrap,
		"enable.metrics.push": false,
		"acks":                "all",
		"enable.idempotence":  true,
		"linger.ms":           50,
		"batch.size":          1 << 20,
		"go.delivery.reports": true,
		// Delivery reports carry only the error: the loader counts them.
		"go.delivery.report.fields": "none",
	}
	for k, v := range extra {
		cm[k] = v
	}
	return kafka.NewProducer(&cm)
}

// loader produces records and counts their delivery reports; the first
// failure is kept.
type loader struct {
	p       *kafka.Producer
	sent    int
	done    chan struct{}
	acked   int
	failure error
}

func newLoader(bootstrap string, extra kafka.ConfigMap) (*loader, error) {
	p, err := newProducer(bootstrap, extra)
	if err != nil {
		return nil, err
	}
	l := &loader{p: p, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for ev := range p.Events() {
			if m, ok := ev.(*kafka.Message); ok {
				if m.TopicPartition.Error != nil && l.failure == nil {
					l.failure = m.TopicPartition.Error
				}
				l.acked++
			}
		}
	}()
	return l, nil
}

func (l *loader) produce(m *kafka.Message) error {
	for {
		err := l.p.Produce(m, nil)
		if err == nil {
			l.sent++
			return nil
		}
		if ke, ok := err.(kafka.Error); !ok || ke.Code() != kafka.ErrQueueFull {
			return err
		}
		l.p.Flush(20)
	}
}

// close flushes everything and reports the first failed delivery.
func (l *loader) close() error {
	for l.p.Flush(1000) > 0 {
	}
	l.p.Close()
	<-l.done
	if l.failure != nil {
		return fmt.Errorf("producing: %w", l.failure)
	}
	if l.acked != l.sent {
		return fmt.Errorf("producing: %d of %d records acknowledged", l.acked, l.sent)
	}
	return nil
}
