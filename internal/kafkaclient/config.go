package kafkaclient

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/tributary-dev/tributary/config"
)

// Role is what a client is for. It decides which properties correctness pins,
// whatever the user's properties say.
type Role int

const (
	// Admin is an admin client: nothing beyond what every client pins.
	Admin Role = iota
	// Producer is a plain producer that must not lose acknowledged records:
	// acks=all.
	Producer
	// IdempotentProducer writes each record once per producer session and in
	// order: enable.idempotence=true, acks=all, and max.in.flight at most 5
	// (librdkafka refuses more with idempotence; a user's value up to 5 stays).
	IdempotentProducer
	// TransactionalProducer is an IdempotentProducer whose transactional.id
	// (and transaction.timeout.ms, when the caller relies on it) come from
	// Required. A user's transactional.id is dropped for every role: it would
	// make any producer transactional.
	TransactionalProducer
	// Consumer reads what committed transactions wrote and never commits or
	// stores offsets itself (tributary keeps them in its own topics):
	// isolation.level=read_committed, enable.auto.commit=false,
	// enable.auto.offset.store=false. group.id, auto.offset.reset and
	// enable.partition.eof, where the caller depends on them, go in Required.
	Consumer
)

// String names the role, as in log lines.
func (r Role) String() string {
	switch r {
	case Admin:
		return "admin"
	case Producer:
		return "producer"
	case IdempotentProducer:
		return "idempotent producer"
	case TransactionalProducer:
		return "transactional producer"
	case Consumer:
		return "consumer"
	}
	return "Role(" + strconv.Itoa(int(r)) + ")"
}

// Required holds properties the caller's correctness depends on beyond its
// Role's (transactional.id, group.id, auto.offset.reset, enable.partition.eof,
// allow.auto.create.topics...). They override the user's properties.
type Required kafka.ConfigMap

// Tuning holds our defaults for a client (linger.ms, message.max.bytes,
// fetch.queue.backoff.ms, partitioner, client.id...). The user's properties
// override them. go.* keys are the Go client's own settings; the user cannot
// set those, so they hold whichever layer they are given in.
type Tuning kafka.ConfigMap

// maxIdempotentInFlight is librdkafka's limit on max.in.flight with
// enable.idempotence (RD_KAFKA_IDEMP_MAX_INFLIGHT, as in the Java client): a
// producer configured with more fails to start.
const maxIdempotentInFlight = 5

// producerEventsChannel is the capacity of a producer's Events channel.
const producerEventsChannel = 4096

// Config builds the configuration of a client of cluster k for role: tuning,
// then k.Properties, then what correctness needs (see the package doc). It
// returns the keys of k.Properties that a correctness setting replaced or
// dropped, sorted, as the user spelt them; a key whose value already agrees
// with ours is not listed. Values are never returned: they may be secrets.
//
// The map is fresh: callers may add to it (Logs.Attach does).
func Config(k *config.Kafka, role Role, req Required, tuning Tuning) (*kafka.ConfigMap, []string) {
	b := builder{props: map[string]prop{}, user: map[string][]string{}, over: map[string]bool{}}
	for key, v := range tuning {
		b.set(key, v, false)
	}
	// Sorted, so that two spellings of one property resolve the same way on
	// every run.
	for _, key := range slices.Sorted(maps.Keys(k.Properties)) {
		if oursOnly(key) {
			b.over[key] = true
			continue
		}
		b.set(key, k.Properties[key], true)
		c := canonical(key)
		b.user[c] = append(b.user[c], key)
	}

	switch role {
	case Producer, IdempotentProducer, TransactionalProducer:
		// The Go client allocates its producer channels whole, at 1M
		// entries each by default: 24 MB a producer, most of an idle
		// node's heap. Nothing here uses ProduceChannel; Events carries
		// errors and, where asked for, delivery reports, which a
		// goroutine of the caller's drains as they come (librdkafka keeps
		// what waits behind it in its own bounded queue).
		b.setDefault("go.produce.channel.size", 0)
		b.setDefault("go.events.channel.size", producerEventsChannel)
	}
	b.pin("bootstrap.servers", k.Bootstrap)
	// KIP-714 client telemetry pushes to brokers that ask; not ours to send.
	b.pin("enable.metrics.push", false)
	switch role {
	case Producer:
		b.pin("acks", "all")
	case IdempotentProducer, TransactionalProducer:
		b.pin("enable.idempotence", true)
		b.pin("acks", "all")
		b.capInFlight()
	case Consumer:
		b.pin("isolation.level", "read_committed")
		b.pin("enable.auto.commit", false)
		b.pin("enable.auto.offset.store", false)
	}
	for _, key := range slices.Sorted(maps.Keys(req)) {
		b.pin(key, req[key])
	}

	cm := make(kafka.ConfigMap, len(b.props))
	for _, p := range b.props {
		cm[p.key] = p.val
	}
	return &cm, slices.Sorted(maps.Keys(b.over))
}

// prop is one librdkafka property under the spelling that set it.
type prop struct {
	key      string
	val      kafka.ConfigValue
	fromUser bool
}

type builder struct {
	props map[string]prop     // by canonical name
	user  map[string][]string // canonical name -> the user's spellings of it
	over  map[string]bool     // user keys replaced or dropped
}

func (b *builder) set(key string, v kafka.ConfigValue, fromUser bool) {
	b.props[canonical(key)] = prop{key: key, val: v, fromUser: fromUser}
}

// setDefault sets key unless the tuning set it.
func (b *builder) setDefault(key string, v kafka.ConfigValue) {
	if _, ok := b.props[canonical(key)]; !ok {
		b.set(key, v, false)
	}
}

// pin sets a property correctness needs, reporting the user's keys for it
// unless their value already agrees.
func (b *builder) pin(key string, v kafka.ConfigValue) {
	c := canonical(key)
	if p, ok := b.props[c]; ok && p.fromUser && !same(c, v, p.val) {
		for _, uk := range b.user[c] {
			b.over[uk] = true
		}
	}
	b.set(key, v, false)
}

// capInFlight keeps max.in.flight within what idempotence allows. Unset, it
// stays unset: librdkafka then lowers its default to the limit itself.
func (b *builder) capInFlight() {
	c := canonical("max.in.flight")
	p, ok := b.props[c]
	if !ok {
		return
	}
	if n, err := strconv.Atoi(fmt.Sprint(p.val)); err == nil && n >= 1 && n <= maxIdempotentInFlight {
		return
	}
	b.pin("max.in.flight", maxIdempotentInFlight)
}

// oursOnly reports whether a property is never taken from the user: the Go
// client's go.* settings (typed channels and sizes the code relies on; the
// client rejects them as strings anyway), log.queue (set by the Go client when
// it forwards logs) and transactional.id (which turns any producer into a
// transactional one that cannot produce outside a transaction).
func oursOnly(key string) bool {
	return strings.HasPrefix(key, "go.") || key == "log.queue" || canonical(key) == "transactional.id"
}

// aliases maps librdkafka's second spellings of a property to the one used
// here (CONFIGURATION.md, "Alias for"). enable.auto.commit and
// auto.commit.enable are distinct properties (the latter, deprecated, is the
// legacy consumer's), but both say "commit for me", so they are pinned
// together.
var aliases = map[string]string{
	"metadata.broker.list":                  "bootstrap.servers",
	"max.in.flight.requests.per.connection": "max.in.flight",
	"queue.buffering.max.ms":                "linger.ms",
	"request.required.acks":                 "acks",
	"delivery.timeout.ms":                   "message.timeout.ms",
	"message.send.max.retries":              "retries",
	"compression.codec":                     "compression.type",
	"sasl.mechanisms":                       "sasl.mechanism",
	"fetch.message.max.bytes":               "max.partition.fetch.bytes",
	"auto.commit.enable":                    "enable.auto.commit",
}

func canonical(key string) string {
	if c, ok := aliases[key]; ok {
		return c
	}
	return key
}

// same reports whether our value a and the user's b of property c mean the
// same to librdkafka, as far as matters for reporting: booleans in any of the
// spellings it takes, acks=all and acks=-1, and strings regardless of case.
func same(c string, a, b kafka.ConfigValue) bool {
	bs := strings.ToLower(fmt.Sprint(b))
	if ab, ok := a.(bool); ok {
		bb, err := strconv.ParseBool(bs)
		return err == nil && ab == bb
	}
	as := strings.ToLower(fmt.Sprint(a))
	if c == "acks" {
		as, bs = allIsMinusOne(as), allIsMinusOne(bs)
	}
	return as == bs
}

func allIsMinusOne(acks string) string {
	if acks == "all" {
		return "-1"
	}
	return acks
}
