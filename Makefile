# tributary: build and test entry points. `make test` is what CI (.ci/run) runs.
#
#   make test        whole suite against two real Kafka clusters (test/run.sh starts and stops
#                    them; PKGS=./foo/... and GOTEST_FLAGS='-run X -v' narrow it down)
#   make test-short  go test without brokers (tests needing them skip)
#   make bench       benchmarks, with the brokers running (BENCH=regexp)
#   make chaos       the chaos suite (test/chaos_test.go) long: longer streams, 3 rounds each;
#                    CHAOS_REPORT=path writes its measurements as JSON; CHAOS_LONG=0 the short form
#   make bench-suite the benchmark suite (test/bench): the ceiling loop, tributary, MirrorMaker 2,
#                    latency and WAN on real brokers, every run checked; RECORDS (2000000),
#                    ROUNDS (3), SCENARIOS, WORKLOADS, BENCH_JSON; about 30 minutes at full scale,
#                    ~6 minutes with RECORDS=20000 ROUNDS=1 (README, "Benchmarks")
#   make outage      the target down for OUTAGE (default 5m) under 10k rec/s: peak RSS and
#                    catch-up time of one node (README, "Sizing"); ~11 min
#   make vet         gofmt check + go vet
#   make build       bin/tributary
#   make image       the container image (Dockerfile) as $(IMAGE), VERSION from git describe;
#                    needs a Docker daemon, which the test machine does not have:
#                    test/image_test.go checks the Dockerfile and runs its build step instead
#   make fuzz        every Go fuzz target for FUZZTIME each (default 5m; FUZZ=regexp narrows)

GO ?= go
PKGS ?= ./...
GOTEST_FLAGS ?=
BENCH ?= .

export PKGS GOTEST_FLAGS BENCH

.PHONY: test test-short bench bench-suite chaos outage fuzz vet build image kafka-fetch

test:
	bash test/run.sh test

test-short:
	$(GO) test -short $(GOTEST_FLAGS) $(PKGS)

bench:
	bash test/run.sh bench

CHAOS_REPORT ?=
CHAOS_LONG ?= 1
chaos:
	TRIBUTARY_CHAOS_LONG=$(CHAOS_LONG) TRIBUTARY_CHAOS_REPORT="$(CHAOS_REPORT)" bash test/run.sh chaos

RECORDS ?= 2000000
ROUNDS ?= 3
SCENARIOS ?=
WORKLOADS ?= 200B,1KiB
BENCH_JSON ?= test/artifacts/bench.json
bench-suite:
	RECORDS="$(RECORDS)" ROUNDS="$(ROUNDS)" SCENARIOS="$(SCENARIOS)" WORKLOADS="$(WORKLOADS)" BENCH_JSON="$(BENCH_JSON)" bash test/run.sh suite

OUTAGE ?= 5m
outage:
	TRIBUTARY_OUTAGE=$(OUTAGE) PKGS=./test/ GOTEST_FLAGS='-run ^TestTargetOutageBoundedMemory$$ -v -count=1 -timeout 40m' bash test/run.sh test

vet:
	@out="$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

build:
	$(GO) build -o bin/tributary ./cmd/tributary

# VERSION is stamped into main.version (cmd/tributary/version.go) by the Dockerfile.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMAGE ?= tributary:$(VERSION)
DOCKER ?= docker
image:
	$(DOCKER) build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

# Download Kafka's jars into the cache ahead of time (test does it when needed).
kafka-fetch:
	bash test/harness/kafka.sh fetch

# Every fuzz target (func FuzzX in *_test.go), one go test -fuzz per target, FUZZTIME each.
# test/run.sh test runs the same script with FUZZTIME=2s after go test.
FUZZTIME ?= 5m
FUZZ ?= .
fuzz:
	FUZZTIME='$(FUZZTIME)' FUZZ='$(FUZZ)' bash test/fuzz.sh
