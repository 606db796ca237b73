package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/hamba/avro/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tributary-dev/tributary/registry"
)

// paymentSchema is the regional payments' Avro schema. Card number, customer
// and location are tagged PII: a policy must cover each, or records are
// quarantined (fail closed).
const paymentSchema = `{"type":"record","name":"Payment","namespace":"com.acme.fleet","fields":[
 {"name":"payment_id","type":"string"},
 {"name":"vin","type":"string"},
 {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["FUEL","CHARGING","PARKING","STREAMING","WIFI","NAVIGATION"]}},
 {"name":"amount","type":"double"},
 {"name":"currency","type":"string"},
 {"name":"merchant","type":"string"},
 {"name":"card","type":{"type":"record","name":"Card","fields":[
   {"name":"number","type":"string","confluent:tags":["PII"]},
   {"name":"brand","type":"string"}]}},
 {"name":"customer","type":{"type":"record","name":"Customer","fields":[
   {"name":"name","type":"string","confluent:tags":["PII"]},
   {"name":"email","type":"string","confluent:tags":["PII"]}]}},
 {"name":"location","type":{"type":"record","name":"Location","fields":[
   {"name":"lat","type":"double","confluent:tags":["PII"]},
   {"name":"lon","type":"double","confluent:tags":["PII"]}]}},
 {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}}]}`

// telemetrySchema is the JSON Schema of the Pub/Sub telemetry in the central
// registry.
const telemetrySchema = `{"$schema":"http://json-schema.org/draft-07/schema#","title":"VehicleTelemetry","type":"object",
 "properties":{
  "vin":{"type":"string","minLength":17,"maxLength":17},
  "ts":{"type":"string"},
  "speed_kmh":{"type":"number","minimum":0,"maximum":400},
  "fuel_pct":{"type":"number","minimum":0,"maximum":100},
  "battery_v":{"type":"number"},
  "odometer_km":{"type":"integer","minimum":0},
  "driver_email":{"type":"string","confluent:tags":["PII"]},
  "location":{"type":"object","properties":{
    "lat":{"type":"number","confluent:tags":["PII"]},
    "lon":{"type":"number","confluent:tags":["PII"]}}}},
 "required":["vin","ts","speed_kmh","location"]}`

type demoPayment struct {
	PaymentID string       `avro:"payment_id"`
	VIN       string       `avro:"vin"`
	Kind      string       `avro:"kind"`
	Amount    float64      `avro:"amount"`
	Currency  string       `avro:"currency"`
	Merchant  string       `avro:"merchant"`
	Card      demoCard     `avro:"card"`
	Customer  demoCustomer `avro:"customer"`
	Location  demoLocation `avro:"location"`
	TS        time.Time    `avro:"ts"`
}

type demoCard struct {
	Number string `avro:"number"`
	Brand  string `avro:"brand"`
}

type demoCustomer struct {
	Name  string `avro:"name"`
	Email string `avro:"email"`
}

type demoLocation struct {
	Lat float64 `avro:"lat" json:"lat"`
	Lon float64 `avro:"lon" json:"lon"`
}

// demoRegion is one regional source of payments.
type demoRegion struct {
	name     string // eu, us
	p        *kafka.Producer
	ids      map[string]int // topic → schema id in the regional registry
	currency string
	lat, lon float64 // centre of the region's fleet
	cities   []string
	cardPfx  string
}

// demoGenerator writes connected-car data: payments into the regional Kafka
// clusters (Avro, registered in the regional registries) and telemetry into
// Pub/Sub (JSON; about one message in 200 breaks its schema and is
// quarantined).
type demoGenerator struct {
	regions   []*demoRegion
	schema    avro.Schema
	ps        *pubsub.Client
	pub       *pubsub.Publisher
	payments  atomic.Int64
	telemetry atomic.Int64
	closeOnce sync.Once
	wg        sync.WaitGroup
}

func newDemoGenerator(ctx context.Context, w *demoWorld) (*demoGenerator, error) {
	schema, err := avro.Parse(paymentSchema)
	if err != nil {
		return nil, err
	}
	g := &demoGenerator{schema: schema}
	for _, r := range []struct {
		name      string
		bootstrap string
		reg       *demoRegistry
		currency  string
		lat, lon  float64
		cities    []string
		cardPfx   string
	}{
		{"eu", w.eu.ListenAddrs()[0], w.euReg, "EUR", 50.11, 8.68, []string{"Frankfurt", "Munich", "Lyon", "Milan", "Vienna"}, "4000"},
		{"us", w.us.ListenAddrs()[0], w.usReg, "USD", 39.95, -75.16, []string{"Philadelphia", "Newark", "Baltimore", "Pittsburgh", "Richmond"}, "5100"},
	} {
		p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": r.bootstrap, "linger.ms": 5,
			"go.delivery.reports": false, "log_level": 0, "enable.metrics.push": false})
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("starting the demo generator: %w", err)
		}
		reg := &demoRegion{name: r.name, p: p, ids: map[string]int{}, currency: r.currency, lat: r.lat, lon: r.lon, cities: r.cities, cardPfx: r.cardPfx}
		g.regions = append(g.regions, reg)
		c, err := r.reg.client()
		if err != nil {
			g.Close()
			return nil, err
		}
		for _, topic := range []string{"payments.fuel", "payments.in-car"} {
			id, err := c.Register(ctx, topic+"-value", &registry.Schema{Type: registry.Avro, Text: paymentSchema})
			if err != nil {
				c.Close()
				g.Close()
				return nil, fmt.Errorf("registering the payment schema in the %s registry: %w", r.name, err)
			}
			reg.ids[topic] = id
		}
		c.Close()
	}

	g.ps, err = pubsub.NewClient(ctx, demoProject, option.WithEndpoint(w.pubsub.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())), option.WithTelemetryDisabled())
	if err != nil {
		g.Close()
		return nil, fmt.Errorf("connecting to the demo's Pub/Sub: %w", err)
	}
	topic := "projects/" + demoProject + "/topics/" + demoPubSubTopic
	if _, err := g.ps.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topic}); err != nil {
		g.Close()
		return nil, fmt.Errorf("creating the demo's Pub/Sub topic: %w", err)
	}
	if _, err := g.ps.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/" + demoProject + "/subscriptions/" + demoSubscription, Topic: topic,
		AckDeadlineSeconds: 20, EnableMessageOrdering: true,
	}); err != nil {
		g.Close()
		return nil, fmt.Errorf("creating the demo's subscription: %w", err)
	}
	g.pub = g.ps.Publisher(demoPubSubTopic)
	g.pub.EnableMessageOrdering = true
	return g, nil
}

// Close stops the generator's clients; safe to call twice.
func (g *demoGenerator) Close() {
	g.closeOnce.Do(func() {
		g.wg.Wait()
		for _, r := range g.regions {
			r.p.Flush(2000)
			r.p.Close()
		}
		if g.pub != nil {
			g.pub.Stop()
		}
		if g.ps != nil {
			g.ps.Close()
		}
	})
}

var (
	demoFirst  = []string{"Anna", "Ben", "Chloé", "David", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Keiko", "Luca", "Maya", "Noah", "Olga", "Pedro"}
	demoLast   = []string{"Müller", "Smith", "Rossi", "García", "Novak", "Dubois", "Kowalski", "Jensen", "O'Brien", "Yilmaz", "Tanaka", "Silva"}
	demoKinds  = []string{"FUEL", "FUEL", "FUEL", "CHARGING", "PARKING", "STREAMING", "WIFI", "NAVIGATION"}
	demoBrands = []string{"VISA", "MASTERCARD", "AMEX"}
)

// Run writes rate payments a second (spread over both regions) and a tenth as
// many telemetry messages, until ctx ends.
func (g *demoGenerator) Run(ctx context.Context, rate int) {
	g.wg.Add(1)
	defer g.wg.Done()
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var paymentDebt, telemetryDebt float64
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			dt := now.Sub(last).Seconds()
			last = now
			paymentDebt += float64(rate) * dt
			telemetryDebt += float64(max(rate/10, 1)) * dt
		}
		for ; paymentDebt >= 1; paymentDebt-- {
			g.payment(r)
		}
		for ; telemetryDebt >= 1; telemetryDebt-- {
			g.publishTelemetry(ctx, r)
		}
	}
}

func demoVIN(region string, n int) string {
	return fmt.Sprintf("%sVW%014d", map[string]string{"eu": "W", "us": "1"}[region], n) // 17 characters
}

func (g *demoGenerator) payment(r *rand.Rand) {
	reg := g.regions[r.IntN(len(g.regions))]
	kind := demoKinds[r.IntN(len(demoKinds))]
	topic := "payments.in-car"
	merchant := kind + " service"
	if kind == "FUEL" || kind == "CHARGING" {
		topic = "payments.fuel"
		merchant = fmt.Sprintf("%s station %s #%d", map[bool]string{true: "Fuel", false: "EV"}[kind == "FUEL"], reg.cities[r.IntN(len(reg.cities))], 100+r.IntN(900))
	}
	car := r.IntN(2000)
	first, lastName := demoFirst[car%len(demoFirst)], demoLast[(car/7)%len(demoLast)]
	p := demoPayment{
		PaymentID: strconv.FormatUint(r.Uint64(), 36),
		VIN:       demoVIN(reg.name, car),
		Kind:      kind,
		Amount:    float64(100+r.IntN(12000)) / 100,
		Currency:  reg.currency,
		Merchant:  merchant,
		Card:      demoCard{Number: fmt.Sprintf("%s%012d", reg.cardPfx, uint64(car)*7919%1_000_000_000_000), Brand: demoBrands[car%len(demoBrands)]},
		Customer:  demoCustomer{Name: first + " " + lastName, Email: fmt.Sprintf("%s.%s%d@mail.example", first, lastName, car)},
		Location:  demoLocation{Lat: reg.lat + r.NormFloat64()*0.8, Lon: reg.lon + r.NormFloat64()*1.2},
		TS:        time.Now().UTC().Truncate(time.Millisecond),
	}
	body, err := avro.Marshal(g.schema, p)
	if err != nil {
		return
	}
	value := registry.AppendFrame(nil, registry.SchemaRef{Magic: registry.MagicID, ID: int32(reg.ids[topic])}, registry.Avro, body)
	err = reg.p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key: []byte(p.VIN), Value: value}, nil)
	if err == nil {
		g.payments.Add(1)
	}
}

func (g *demoGenerator) publishTelemetry(ctx context.Context, r *rand.Rand) {
	car := r.IntN(300)
	region := []string{"eu", "us"}[car%2]
	centre := g.regions[car%2]
	first, lastName := demoFirst[car%len(demoFirst)], demoLast[(car/7)%len(demoLast)]
	msg := map[string]any{
		"vin":          demoVIN(region, car),
		"ts":           time.Now().UTC().Format(time.RFC3339Nano),
		"speed_kmh":    float64(r.IntN(1800)) / 10,
		"fuel_pct":     float64(r.IntN(1000)) / 10,
		"battery_v":    11.8 + float64(r.IntN(30))/10,
		"odometer_km":  10_000 + car*97 + r.IntN(50),
		"driver_email": fmt.Sprintf("%s.%s%d@mail.example", first, lastName, car),
		"location":     demoLocation{Lat: centre.lat + r.NormFloat64()*0.8, Lon: centre.lon + r.NormFloat64()*1.2},
	}
	if r.IntN(200) == 0 {
		msg["speed_kmh"] = -1 // a broken sensor: fails the schema, goes to quarantine
	}
	data, _ := json.Marshal(msg)
	vin := msg["vin"].(string)
	g.pub.Publish(ctx, &pubsub.Message{Data: data, OrderingKey: vin, Attributes: map[string]string{"vin": vin, "region": region}})
	g.telemetry.Add(1)
}
