package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/replicator"
)

// The ceiling: the least a consume→produce copy with tributary's client and
// settings costs. Each of -tasks loops owns a consumer (assigned its share of
// the partitions from the beginning, as tributary's tasks are) and a
// producer, and copies every record unchanged (key, value, headers,
// timestamp) to the same partition of -dest. Exactly-once: one transaction
// per -commit-interval that also writes the consumer's positions, one record
// per partition, to -offsets on the target (source offsets cannot go through
// SendOffsetsToTransaction to another cluster; tributary writes its
// checkpoints the same way, MirrorMaker 2 into its Connect offsets topic).
// Otherwise: delivery reports counted, and the positions noted at each
// interval committed to the source cluster's group once every record
// produced before them is delivered.
//
// The client settings are tributary's: replicator.ProducerConfig and
// ConsumerConfig, for the default buffer_bytes, with the loop's own ids and
// the consumer starting at the earliest offset (a task without checkpoints).
func ceilingProducerConfig(target string, eos bool, id string) *kafka.ConfigMap {
	// librdkafka's default batch.size, which is what a task computes for a
	// topic with the broker's default max.message.bytes (replicator/poison.go).
	const batchSize = 1_000_000
	_, cm, _ := replicator.ProducerConfig(&config.Kafka{Bootstrap: target}, "bench", 0, eos, config.DefaultBufferBytes, batchSize)
	(*cm)["client.id"] = id
	if eos {
		(*cm)["transactional.id"] = id
	}
	return cm
}

func ceilingConsumerConfig(source, group, id string) *kafka.ConfigMap {
	cm, _ := replicator.ConsumerConfig(&config.Kafka{Bootstrap: source}, "bench", 0, config.DefaultBufferBytes)
	(*cm)["client.id"] = id
	(*cm)["group.id"] = group
	(*cm)["auto.offset.reset"] = "earliest"
	return cm
}

// ceilingMain runs the ceiling until SIGTERM.
func ceilingMain(args []string) error {
	fs := flag.NewFlagSet("ceiling", flag.ContinueOnError)
	source := fs.String("source", "", "source bootstrap servers")
	target := fs.String("target", "", "target bootstrap servers")
	topic := fs.String("topic", "", "source topic")
	dest := fs.String("dest", "", "target topic (must exist, same partition count)")
	offsets := fs.String("offsets", "", "target topic the exactly-once loop writes its positions to (must exist)")
	parts := fs.Int("partitions", 12, "partitions of the source topic")
	tasks := fs.Int("tasks", 3, "copy loops")
	eos := fs.Bool("eos", true, "exactly-once (transactions)")
	interval := fs.Duration("commit-interval", 100*time.Millisecond, "transaction / commit interval (tributary's commit_interval default)")
	id := fs.String("id", "bench-ceiling", "client.id, group.id and transactional.id prefix")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *source == "" || *target == "" || *topic == "" || *dest == "" || (*eos && *offsets == "") {
		return errors.New("ceiling: -source, -target, -topic, -dest and (with -eos) -offsets are required")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer cancel()
	errs := make(chan error, *tasks)
	var wg sync.WaitGroup
	for t := 0; t < *tasks; t++ {
		var mine []int32
		for p := t; p < *parts; p += *tasks {
			mine = append(mine, int32(p))
		}
		wg.Add(1)
		go func(t int) {
			defer wg.Done()
			l := &loop{source: *source, target: *target, topic: *topic, dest: *dest, offsets: *offsets, parts: mine, eos: *eos,
				interval: *interval, id: fmt.Sprintf("%s-%d", *id, t), group: *id}
			if err := l.run(ctx); err != nil {
				errs <- fmt.Errorf("loop %d: %w", t, err)
				cancel()
			}
		}(t)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

type loop struct {
	source, target, topic, dest, id, group string
	offsets                                string
	parts                                  []int32
	eos                                    bool
	interval                               time.Duration
}

func (l *loop) run(ctx context.Context) error {
	prod, err := kafka.NewProducer(ceilingProducerConfig(l.target, l.eos, l.id))
	if err != nil {
		return err
	}
	var delivered atomic.Int64
	var failed atomic.Value
	evDone := make(chan struct{})
	go func() {
		defer close(evDone)
		for ev := range prod.Events() {
			switch e := ev.(type) {
			case *kafka.Message:
				if e.TopicPartition.Error != nil {
					failed.CompareAndSwap(nil, e.TopicPartition.Error)
				}
				delivered.Add(1)
			case kafka.Error:
				if e.IsFatal() {
					failed.CompareAndSwap(nil, error(e))
				}
			}
		}
	}()
	defer func() { prod.Close(); <-evDone }()
	cons, err := kafka.NewConsumer(ceilingConsumerConfig(l.source, l.group, l.id))
	if err != nil {
		return err
	}
	defer cons.Close()
	var tps []kafka.TopicPartition
	for _, p := range l.parts {
		tps = append(tps, kafka.TopicPartition{Topic: &l.topic, Partition: p, Offset: kafka.OffsetBeginning})
	}
	if err := cons.Assign(tps); err != nil {
		return err
	}
	if l.eos {
		if err := prod.InitTransactions(ctx); err != nil {
			return fmt.Errorf("init transactions: %w", err)
		}
	}
	next := map[int32]kafka.Offset{}
	touched := map[int32]bool{} // in this transaction
	type mark struct {
		produced int64
		offsets  []kafka.TopicPartition
	}
	var marks []mark
	var produced int64
	positions := func() []kafka.TopicPartition {
		var out []kafka.TopicPartition
		for p, o := range next {
			out = append(out, kafka.TopicPartition{Topic: &l.topic, Partition: p, Offset: o})
		}
		return out
	}
	for ctx.Err() == nil {
		if e := failed.Load(); e != nil {
			return fmt.Errorf("producer: %v", e)
		}
		if l.eos {
			if err := prod.BeginTransaction(); err != nil {
				return fmt.Errorf("begin transaction: %w", err)
			}
		}
		end := time.Now().Add(l.interval)
		for ctx.Err() == nil {
			left := time.Until(end)
			if left <= 0 {
				break
			}
			ev := cons.Poll(int(left.Milliseconds()) + 1)
			switch m := ev.(type) {
			case *kafka.Message:
				out := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &l.dest, Partition: m.TopicPartition.Partition},
					Key: m.Key, Value: m.Value, Headers: m.Headers, Timestamp: m.Timestamp}
				for {
					err := prod.Produce(out, nil)
					if err == nil {
						break
					}
					if ke, ok := err.(kafka.Error); !ok || ke.Code() != kafka.ErrQueueFull {
						return fmt.Errorf("produce: %w", err)
					}
					prod.Flush(10)
				}
				produced++
				next[m.TopicPartition.Partition] = m.TopicPartition.Offset + 1
				touched[m.TopicPartition.Partition] = true
			case kafka.Error:
				if m.IsFatal() {
					return fmt.Errorf("consumer: %w", m)
				}
			}
		}
		if l.eos {
			for p, o := range next {
				if touched[p] {
					ck := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &l.offsets, Partition: kafka.PartitionAny},
						Key: fmt.Appendf(nil, "%s/%d", l.topic, p), Value: fmt.Appendf(nil, "%d", o)}
					if err := prod.Produce(ck, nil); err != nil {
						return fmt.Errorf("produce checkpoint: %w", err)
					}
				}
			}
			clear(touched)
			if err := prod.CommitTransaction(context.Background()); err != nil {
				return fmt.Errorf("commit transaction: %w", err)
			}
			continue
		}
		if len(next) > 0 {
			marks = append(marks, mark{produced: produced, offsets: positions()})
		}
		d := delivered.Load()
		var commit []kafka.TopicPartition
		for len(marks) > 0 && marks[0].produced <= d {
			commit = marks[0].offsets
			marks = marks[1:]
		}
		if commit != nil {
			if _, err := cons.CommitOffsets(commit); err != nil {
				return fmt.Errorf("commit offsets: %w", err)
			}
		}
	}
	return nil
}
