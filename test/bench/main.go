// Command bench is tributary's benchmark suite (issue 15): on the test
// harness's real brokers (test/harness/kafka.sh: a source and a target
// single-node KRaft cluster) it runs, one after another and ROUNDS times
// (medians):
//
//   - the ceiling: a minimal consume→produce loop with tributary's client
//     (confluent-kafka-go) and settings, no processing (ceiling.go), with
//     transactions and without;
//   - tributary, one node (the real binary), bytes pipeline, exactly-once on
//     and off;
//   - tributary with Avro records through schema-id translation (embedded
//     source and target registries) and a policy masking 4 of 20 fields;
//   - Apache Kafka MirrorMaker 2 in dedicated mode, at its defaults and tuned,
//     at-least-once and exactly-once (mm2.go);
//   - end-to-end latency at a fixed offered load, exactly-once (latency.go);
//   - a WAN case: the source reached through a proxy adding 50 ms each way.
//
// Workloads: RECORDS (default 2,000,000) records of 200 bytes and RECORDS/4
// of 1 KiB, over 12 partitions, 3 small headers, pre-loaded with current
// timestamps. Every run is checked by an independent read_committed consumer
// on the target (watch.go): all records exactly once, in order, headers and
// values intact (Avro: the masked fields masked); a run that fails the check
// is reported as FAILED and is not a measurement.
//
// Per run: records/s and MB/s from the replicator's start to the last record
// read back; the copy phase from the first record read back to the last;
// CPU seconds (user+sys, /proc/<pid>/stat) of the replicator process per
// million records, whole run and copy phase; CPU before the first record;
// peak RSS (VmHWM); time to first record. Output: one markdown table on
// stdout (and BENCH_MD) and a JSON file (BENCH_JSON).
//
// Run it with `make bench-suite` (test/run.sh starts and stops the brokers);
// see test/bench/README.md for the options. `bench ceiling ...` is the
// ceiling loop the suite starts as its own process.
package main

import (
	"fmt"
	"os"

	"github.com/tributary-dev/tributary/internal/kafkaclient"
)

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "ceiling" {
		// As tributary does: the ceiling runs the same client, allocating alike.
		kafkaclient.LimitMallocArenas()
		err = ceilingMain(os.Args[2:])
	} else {
		err = suiteMain(os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
