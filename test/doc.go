// Package test holds tributary's black-box suites: end-to-end mirroring on real
// Apache Kafka brokers (started by test/run.sh, addresses in the environment),
// crash and restart tests that run the tributary binary as a separate process,
// and benchmarks. The tests skip with a message when the brokers are absent, so
// `go test ./...` stays fast; `make test` always provides them.
package test
