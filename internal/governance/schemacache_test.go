package governance

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/hamba/avro/v2"

	"github.com/tributary-dev/tributary/config"
	"github.com/tributary-dev/tributary/policy"
	"github.com/tributary-dev/tributary/registry"
)

// readCounter counts the GET requests a registry serves, by path.
type readCounter struct {
	h  http.Handler
	mu sync.Mutex
	n  map[string]int
}

func (c *readCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		c.mu.Lock()
		c.n[r.URL.Path]++
		c.mu.Unlock()
	}
	c.h.ServeHTTP(w, r)
}

// reads returns the counts so far and starts counting over.
func (c *readCounter) reads() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// newCountedRegistry is an embedded registry over HTTP whose reads are
// counted.
func newCountedRegistry(t *testing.T) (*testRegistry, *readCounter) {
	t.Helper()
	s, err := registry.NewServer(registry.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := &readCounter{h: s, n: map[string]int{}}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return &testRegistry{srv: srv, client: newClient(t, srv.URL)}, c
}

// newClient is a fresh registry client, with an empty cache of its own.
func newClient(t *testing.T, url string) *registry.Client {
	t.Helper()
	c, err := registry.NewClient(&config.SchemaRegistry{URL: url}, registry.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// registerRefs registers the schema in testdata/file under subject with refs,
// each the version 1 of the subject named like the type it holds.
func (r *testRegistry) registerRefs(t *testing.T, subject, file string, refs ...string) int {
	t.Helper()
	s := &registry.Schema{Type: registry.Avro, Text: readTestdata(t, file)}
	for _, name := range refs {
		s.References = append(s.References, registry.Reference{Name: name, Subject: name, Version: 1})
	}
	id, err := r.client.Register(context.Background(), subject, s)
	if err != nil {
		t.Fatalf("registering %s under %s: %v", file, subject, err)
	}
	return id
}

type address struct {
	Zip  string `avro:"zip"`
	City string `avro:"city"`
}

type order struct {
	ID    string `avro:"id"`
	Buyer struct {
		Name  string  `avro:"name"`
		Email string  `avro:"email"`
		Home  address `avro:"home"`
	} `avro:"buyer"`
	Shipment struct {
		Carrier string  `avro:"carrier"`
		To      address `avro:"to"`
	} `avro:"shipment"`
}

// orderSchema is testdata/refs/order.avsc with the schemas it references.
func orderSchema(t *testing.T) avro.Schema {
	t.Helper()
	cache := &avro.SchemaCache{}
	for _, f := range []string{"refs/address.avsc", "refs/contact.avsc", "refs/shipment.avsc"} {
		if _, err := avro.ParseWithCache(readTestdata(t, f), "", cache); err != nil {
			t.Fatal(err)
		}
	}
	s, err := avro.ParseWithCache(readTestdata(t, "refs/order.avsc"), "", cache)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestMaskingReadsEachSchemaOnce counts the target registry's reads: masking
// reads a writer schema, and each schema it references, once, however many
// records carry it and however many Transform calls want it at once.
func TestMaskingReadsEachSchemaOnce(t *testing.T) {
	reg, counter := newCountedRegistry(t)
	customerID := reg.register(t, "eu.customers-value", registry.Avro, "customer.avsc")
	customerGUID := reg.guid(t, customerID)
	// Order references Contact and Shipment, which both reference Address.
	reg.registerRefs(t, "acme.shop.Address", "refs/address.avsc")
	reg.registerRefs(t, "acme.shop.Contact", "refs/contact.avsc", "acme.shop.Address")
	reg.registerRefs(t, "acme.shop.Shipment", "refs/shipment.avsc", "acme.shop.Address")
	orderID := reg.registerRefs(t, "eu.orders-value", "refs/order.avsc", "acme.shop.Contact", "acme.shop.Shipment")

	alice := customer{ID: "c-1", Email: "alice@example.com", Country: "GB"}
	var o order
	o.ID, o.Buyer.Name, o.Buyer.Email = "o-1", "Alice", "alice@example.com"
	o.Buyer.Home, o.Shipment.Carrier, o.Shipment.To = address{"1000", "Brussels"}, "post", address{"1050", "Ixelles"}
	orderBody, err := avro.Marshal(orderSchema(t), o)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		records    int
		goroutines int
		value      []byte
		headers    []kafka.Header
		// wantReads are the reads of the registry, by path.
		wantReads map[string]int
		// check looks at one masked value.
		check func(t *testing.T, value []byte)
	}{
		{
			name: "1,000 records of one schema id read the schema once", records: 1000, goroutines: 1,
			value:     frame(t, customerID, "customer.avsc", alice),
			wantReads: map[string]int{fmt.Sprintf("/schemas/ids/%d", customerID): 1},
			check: func(t *testing.T, v []byte) {
				if c := decodeCustomer(t, v); c.Email != pseudonym(alice.Email) {
					t.Error("email not masked")
				}
			},
		},
		{
			name: "1,000 records whose header names one GUID read the schema once", records: 1000, goroutines: 1,
			value:     avroBody(t, "customer.avsc", alice),
			headers:   []kafka.Header{valueSchemaHeader(guidRef(customerGUID))},
			wantReads: map[string]int{"/schemas/guids/" + registry.FormatGUID(customerGUID): 1},
		},
		{
			name: "a schema whose references share a third reads each referenced subject version once", records: 1000, goroutines: 1,
			value: registry.AppendFrame(nil, registry.SchemaRef{ID: int32(orderID)}, registry.Avro, orderBody),
			wantReads: map[string]int{
				fmt.Sprintf("/schemas/ids/%d", orderID):   1,
				"/subjects/acme.shop.Contact/versions/1":  1,
				"/subjects/acme.shop.Shipment/versions/1": 1,
				"/subjects/acme.shop.Address/versions/1":  1,
			},
			check: func(t *testing.T, v []byte) {
				var got order
				if err := avro.Unmarshal(orderSchema(t), v[5:], &got); err != nil {
					t.Fatalf("the masked order does not decode: %v", err)
				}
				want := o
				want.Buyer.Email = pseudonym(o.Buyer.Email)
				if got != want {
					t.Errorf("masked %+v, want %+v", got, want)
				}
			},
		},
		{
			name: "concurrent records of one schema id read it once", records: 1000, goroutines: 16,
			value:     frame(t, customerID, "customer.avsc", alice),
			wantReads: map[string]int{fmt.Sprintf("/schemas/ids/%d", customerID): 1},
		},
		{
			name: "concurrent records whose header names one GUID read it once", records: 1000, goroutines: 16,
			value:     avroBody(t, "customer.avsc", alice),
			headers:   []kafka.Header{valueSchemaHeader(guidRef(customerGUID))},
			wantReads: map[string]int{"/schemas/guids/" + registry.FormatGUID(customerGUID): 1},
		},
		{
			name: "concurrent records of a schema with shared references read each once", records: 1000, goroutines: 16,
			value: registry.AppendFrame(nil, registry.SchemaRef{ID: int32(orderID)}, registry.Avro, orderBody),
			wantReads: map[string]int{
				fmt.Sprintf("/schemas/ids/%d", orderID):   1,
				"/subjects/acme.shop.Contact/versions/1":  1,
				"/subjects/acme.shop.Shipment/versions/1": 1,
				"/subjects/acme.shop.Address/versions/1":  1,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A fresh client and Masking: nothing cached from the other cases.
			g, _ := newMasking(t, newClient(t, reg.srv.URL))
			s := newStep(t, g, StepConfig{Pipeline: "eu-customers", Format: "avro"})
			counter.reads()
			start := make(chan struct{})
			errs := make(chan error, tt.records)
			var wg sync.WaitGroup
			for w := range tt.goroutines {
				wg.Go(func() {
					<-start
					for i := w; i < tt.records; i += tt.goroutines {
						rec := &Record{SourceTopic: "customers", Value: tt.value, Headers: tt.headers}
						if err := s.Transform(context.Background(), rec); err != nil {
							errs <- fmt.Errorf("record %d: %w", i, err)
							return
						}
						if i == 0 && tt.check != nil {
							tt.check(t, rec.Value)
						}
						if h, _ := header(rec, HeaderPolicy); h != "customers-pii@3" {
							errs <- fmt.Errorf("record %d: %s header %q", i, HeaderPolicy, h)
							return
						}
					}
				})
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if got := counter.reads(); !maps.Equal(got, tt.wantReads) {
				t.Errorf("registry reads %v, want %v", got, tt.wantReads)
			}
		})
	}
}

// TestMaskingReferenceBounds covers writer schemas whose references go past
// what masking follows. The answer never changes, so the record is rejected
// rather than retried for ever, which would stall its partition.
func TestMaskingReferenceBounds(t *testing.T) {
	reg := newTestRegistry(t, registry.ServerOptions{})
	ctx := context.Background()
	register := func(subject, text string, refs ...string) int {
		t.Helper()
		s := &registry.Schema{Type: registry.Avro, Text: text}
		for _, r := range refs {
			s.References = append(s.References, registry.Reference{Name: r, Subject: r, Version: 1})
		}
		id, err := reg.client.Register(ctx, subject, s)
		if err != nil {
			t.Fatalf("registering %s: %v", subject, err)
		}
		return id
	}
	// The body of a record with n fields of one PII-tagged string each,
	// however deep they are.
	body := func(n int) []byte { return bytes.Repeat([]byte{0x02, 'x'}, n) }

	// acme.chain.Link<n> holds Link<n-1>, down to Link0: the schema of
	// Link<n> references n schemas nested n deep.
	chain := map[int]int{}
	for n := 0; n <= maxReferenceDepth+1; n++ {
		name := fmt.Sprintf("acme.chain.Link%d", n)
		if n == 0 {
			chain[n] = register(name, `{"type":"record","name":"Link0","namespace":"acme.chain","fields":[{"name":"email","type":"string","confluent:tags":["PII"]}]}`)
			continue
		}
		prev := fmt.Sprintf("acme.chain.Link%d", n-1)
		chain[n] = register(name, fmt.Sprintf(`{"type":"record","name":"Link%d","namespace":"acme.chain","fields":[{"name":"next","type":%q}]}`, n, prev), prev)
	}
	// acme.wide.Wide<n> has n fields, each of its own referenced type.
	var leaves []string
	for i := range maxReferences + 1 {
		name := fmt.Sprintf("acme.wide.Leaf%d", i)
		register(name, fmt.Sprintf(`{"type":"record","name":"Leaf%d","namespace":"acme.wide","fields":[{"name":"email","type":"string","confluent:tags":["PII"]}]}`, i))
		leaves = append(leaves, name)
	}
	wide := func(n int) int {
		fields := make([]string, n)
		for i := range fields {
			fields[i] = fmt.Sprintf(`{"name":"f%d","type":%q}`, i, leaves[i])
		}
		return register(fmt.Sprintf("acme.wide.Wide%d", n),
			fmt.Sprintf(`{"type":"record","name":"Wide%d","namespace":"acme.wide","fields":[%s]}`, n, strings.Join(fields, ",")), leaves[:n]...)
	}

	// More than maxReferences referenced schemas cannot be registered in the
	// embedded registry (it refuses them as Confluent's limits do), so that
	// bound is only reachable with other registries; the depth bound is tested.
	g, _ := newMasking(t, reg.client)
	s := newStep(t, g, StepConfig{Pipeline: "eu-customers", Format: "avro"})
	tests := []struct {
		name   string
		id     int
		fields int    // the PII-tagged strings in the body
		reject string // "" when the record is masked
		why    string // in the rejection
	}{
		{name: "references nested as deep as the bound are followed and the record masked",
			id: chain[maxReferenceDepth], fields: 1},
		{name: "references nested deeper than the bound are undecodable",
			id: chain[maxReferenceDepth+1], fields: 1, reject: policy.ReasonUndecodable, why: "nested deeper"},
		{name: "as many referenced schemas as the bound are read and the record masked",
			id: wide(maxReferences), fields: maxReferences},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for attempt := range 2 { // the second from the caches, if any
				rec := &Record{SourceTopic: "chain", Value: registry.AppendFrame(nil, registry.SchemaRef{ID: int32(tt.id)}, registry.Avro, body(tt.fields))}
				err := s.Transform(ctx, rec)
				if tt.reject != "" {
					if re := wantReject(t, err, tt.reject); !strings.Contains(re.Msg, tt.why) {
						t.Errorf("attempt %d: the rejection does not say why: %q", attempt, re.Msg)
					}
					continue
				}
				if err != nil {
					t.Fatalf("attempt %d: %v", attempt, err)
				}
				// Each "x" became its 64-character pseudonym (length 64: 0x80 0x01).
				masked := bytes.Repeat(append([]byte{0x80, 0x01}, pseudonym("x")...), tt.fields)
				if !bytes.Equal(rec.Value[5:], masked) {
					t.Errorf("attempt %d: the fields were not hashed", attempt)
				}
			}
		})
	}
}
