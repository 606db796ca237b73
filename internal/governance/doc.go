// Package governance is the one governance step every record passes before it
// lands in the central cluster, on the Kafka path (replicator) and the Pub/Sub
// path (pubsubbridge) alike: schema-id translation (Translation), JSON Schema
// validation of Pub/Sub messages and PII masking with the cluster's active
// policy bundle (Masking).
//
// It defines the types both paths share — Record, Transformer, RejectError — so
// that a rule can never hold on one path and not on the other. A step either
// changes the record, rejects it (*RejectError: the caller quarantines it in
// the source region) or cannot decide now (any other error: the caller retries
// and quarantines nothing).
//
// The package reads schemas through registry and masks through policy; it
// knows nothing of Raft, Kafka clients or Pub/Sub clients. The daemon wires it.
package governance
