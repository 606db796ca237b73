package main

import (
	"context"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// watch is the independent read_committed consumer that checks a run and
// times it: it waits for the target topic to exist, reads every partition
// from the beginning into the checker, and signals the first record and
// completion. It keeps reading after completion until its context ends, so
// that a duplicate arriving late still fails the run.
type watch struct {
	first    chan time.Time // the first record arrived (onFirst has run)
	complete chan time.Time // every expected record arrived
	expect   chan []int     // the expected counts, when known only later (latency scenario)
	done     chan struct{}
	err      error // why it stopped early (check failure, client error); read after done
	c        *checker
}

// startWatch begins watching topic (parts partitions) on the target.
// onFirst runs in the watch goroutine as soon as the first record is read;
// onRecord (optional) sees every record that passed the check.
func startWatch(ctx context.Context, target, topic string, parts int, c *checker, onFirst func(time.Time), onRecord func(*kafka.Message, time.Time)) *watch {
	w := &watch{first: make(chan time.Time, 1), complete: make(chan time.Time, 1), expect: make(chan []int, 1), done: make(chan struct{}), c: c}
	go func() {
		defer close(w.done)
		w.err = w.run(ctx, target, topic, parts, onFirst, onRecord)
	}()
	return w
}

func (w *watch) run(ctx context.Context, target, topic string, parts int, onFirst func(time.Time), onRecord func(*kafka.Message, time.Time)) error {
	a, err := newAdmin(target)
	if err != nil {
		return err
	}
	for n := 0; n != parts; n = partitionsOf(a, topic) {
		if n > 0 && n != parts {
			a.Close()
			return fmt.Errorf("target topic %s has %d partitions, want %d", topic, n, parts)
		}
		select {
		case <-ctx.Done():
			a.Close()
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	a.Close()
	cons, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":        target,
		"enable.metrics.push":      false,
		"group.id":                 "bench-check",
		"isolation.level":          "read_committed",
		"enable.auto.commit":       false,
		"enable.auto.offset.store": false,
		"auto.offset.reset":        "earliest",
		"fetch.queue.backoff.ms":   5,
		// A delayed fetch ends when data is there, but never later than this
		// either: the latency scenario measures arrival with it.
		"fetch.wait.max.ms": 100,
	})
	if err != nil {
		return err
	}
	defer cons.Close()
	var tps []kafka.TopicPartition
	for p := 0; p < parts; p++ {
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: int32(p), Offset: kafka.OffsetBeginning})
	}
	if err := cons.Assign(tps); err != nil {
		return err
	}
	seen, completed := false, false
	for ctx.Err() == nil {
		select {
		case want := <-w.expect:
			w.c.expect(want)
			if !completed && w.c.complete() {
				completed = true
				w.complete <- time.Now()
			}
		default:
		}
		switch m := cons.Poll(100).(type) {
		case *kafka.Message:
			now := time.Now()
			if err := w.c.record(m.TopicPartition.Partition, m.Key, m.Value, m.Headers); err != nil {
				return fmt.Errorf("check of %s failed: %w", topic, err)
			}
			if !seen {
				seen = true
				if onFirst != nil {
					onFirst(now)
				}
				w.first <- now
			}
			if onRecord != nil {
				onRecord(m, now)
			}
			if !completed && w.c.complete() {
				completed = true
				w.complete <- now
			}
		case kafka.Error:
			if m.IsFatal() {
				return fmt.Errorf("check consumer: %w", m)
			}
		}
	}
	return nil
}
