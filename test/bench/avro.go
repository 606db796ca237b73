package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/hamba/avro/v2"

	"github.com/tributary-dev/tributary/registry"
)

// The Avro workload: a 20-field order record (~200 bytes encoded) of which
// the policy masks four string fields (email, name, phone, card); their
// values start with piiMarker so the checker can tell they were masked.
const orderSchema = `{"type":"record","name":"Order","namespace":"bench","fields":[
{"name":"id","type":"long"},
{"name":"seq","type":"long"},
{"name":"ts","type":"long"},
{"name":"email","type":"string"},
{"name":"name","type":"string"},
{"name":"phone","type":"string"},
{"name":"card","type":"string"},
{"name":"country","type":"string"},
{"name":"city","type":"string"},
{"name":"street","type":"string"},
{"name":"zip","type":"string"},
{"name":"amount","type":"double"},
{"name":"currency","type":"string"},
{"name":"merchant","type":"string"},
{"name":"category","type":"string"},
{"name":"device","type":"string"},
{"name":"channel","type":"string"},
{"name":"status","type":"string"},
{"name":"score","type":"double"},
{"name":"note","type":"string"}]}`

// maskedFields are the fields the policy masks.
var maskedFields = []string{"email", "name", "phone", "card"}

const orderPolicy = `policy: bench-orders
version: 1
owner: bench@tributary.example
description: the benchmark's Avro workload, 4 of 20 fields masked
rules:
  - match: {field: email}
    action: mask
  - match: {field: name}
    action: mask
  - match: {field: phone}
    action: mask
  - match: {field: card}
    action: mask
    keep_last: 4
`

type order struct {
	ID       int64   `avro:"id"`
	Seq      int64   `avro:"seq"`
	TS       int64   `avro:"ts"`
	Email    string  `avro:"email"`
	Name     string  `avro:"name"`
	Phone    string  `avro:"phone"`
	Card     string  `avro:"card"`
	Country  string  `avro:"country"`
	City     string  `avro:"city"`
	Street   string  `avro:"street"`
	Zip      string  `avro:"zip"`
	Amount   float64 `avro:"amount"`
	Currency string  `avro:"currency"`
	Merchant string  `avro:"merchant"`
	Category string  `avro:"category"`
	Device   string  `avro:"device"`
	Channel  string  `avro:"channel"`
	Status   string  `avro:"status"`
	Score    float64 `avro:"score"`
	Note     string  `avro:"note"`
}

// avroEncoder makes the wire-format values of the Avro workload.
type avroEncoder struct {
	schema avro.Schema
	id     int32
}

func (e *avroEncoder) value(i, seq int, ts int64) ([]byte, error) {
	o := order{
		ID: int64(i), Seq: int64(seq), TS: ts,
		Email:   fmt.Sprintf("pii-user%07d@example.com", i%1000000),
		Name:    fmt.Sprintf("pii-Jane Doe %05d", i%100000),
		Phone:   fmt.Sprintf("pii-+4930%08d", i%100000000),
		Card:    fmt.Sprintf("pii-4111111111%06d", i%1000000),
		Country: "DE", City: "Berlin", Street: "Unter den Linden 77", Zip: "10117",
		Amount: float64(i%10000) / 100, Currency: "EUR", Merchant: "merchant-0042", Category: "groceries",
		Device: "pos-7", Channel: "in-store", Status: "captured", Score: 0.25, Note: "benchmark order",
	}
	body, err := avro.Marshal(e.schema, o)
	if err != nil {
		return nil, err
	}
	return registry.AppendFrame(nil, registry.SchemaRef{Magic: registry.MagicID, ID: e.id}, registry.Avro, body), nil
}

// registryServer is an embedded schema registry (as `tributary registry
// serve` runs it) on a loopback port, in memory.
type registryServer struct {
	srv *http.Server
	url string
}

func startRegistry() (*registryServer, error) {
	h, err := registry.NewServer(registry.ServerOptions{})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &registryServer{srv: &http.Server{Handler: h}, url: "http://" + ln.Addr().String()}
	go r.srv.Serve(ln)
	return r, nil
}

func (r *registryServer) close() { r.srv.Close() }

func (r *registryServer) register(subject, schema string) (int32, error) {
	body, _ := json.Marshal(map[string]string{"schema": schema, "schemaType": "AVRO"})
	resp, err := http.Post(r.url+"/subjects/"+subject+"/versions", "application/vnd.schemaregistry.v1+json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		ID      int32  `json:"id"`
		Message string `json:"message"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("registering %s: HTTP %d %s %v", subject, resp.StatusCode, out.Message, err)
	}
	return out.ID, nil
}

// writePolicy writes the workload's policy folder under dir.
func writePolicy(dir string) (string, error) {
	pd := filepath.Join(dir, "policies")
	if err := os.MkdirAll(pd, 0o755); err != nil {
		return "", err
	}
	return pd, os.WriteFile(filepath.Join(pd, "bench-orders.yaml"), []byte(orderPolicy), 0o644)
}
