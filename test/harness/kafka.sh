#!/usr/bin/env bash
# Real Apache Kafka 4.x brokers for tributary's tests.
#
#   kafka.sh fetch                      download Kafka's jars into the cache (no-op when complete)
#   kafka.sh start DIR                  start the "source" and "target" single-node KRaft clusters
#                                       (in parallel) and write DIR/env
#   kafka.sh stop DIR                   stop both (TERM, then KILL after KAFKA_STOP_TIMEOUT s); idempotent
#   kafka.sh stop-cluster DIR NAME      stop one cluster (NAME = source|target), keeping port and data
#   kafka.sh kill-cluster DIR NAME      SIGKILL one cluster at once (a crash rather than a shutdown)
#   kafka.sh start-cluster DIR NAME     (re)start one cluster on the same port and data; no-op if running
#   kafka.sh status DIR                 print which clusters run
#   kafka.sh logs DIR [LINES]           print the tail of each cluster's log files
#
# Environment:
#   KAFKA_VERSION        org.apache.kafka:kafka_2.13 version (default 4.1.1)
#   KAFKA_LOG4J_VERSION  log4j2 version of the slf4j binding (default 2.24.3, what Kafka 4.1 uses)
#   TRIBUTARY_CACHE      cache root (default $HOME/.cache/tributary); jars go to
#                        $TRIBUTARY_CACHE/kafka-$KAFKA_VERSION/libs
#   KAFKA_HEAP           broker JVM heap flags (default "-Xmx512m -Xms512m")
#   KAFKA_JVM_OPTS       extra broker JVM flags
#   KAFKA_START_TIMEOUT  seconds to wait for a broker to start (default 90)
#   KAFKA_STOP_TIMEOUT   seconds between TERM and KILL (default 30)
#   KAFKA_WAN            1: the source cluster gets a third client listener, WAN (PLAINTEXT),
#                        that advertises another port, where the caller runs a proxy to it
#                        (test/bench puts a delaying harness.Proxy there: clients that
#                        bootstrap through the proxy keep going through it). DIR/env names
#                        both: TRIBUTARY_TEST_SOURCE_WAN_LISTENER (the broker's listener) and
#                        TRIBUTARY_TEST_SOURCE_WAN_BOOTSTRAP (where the proxy must listen).
#                        Decided when DIR is first configured. Default 0.
#   KAFKA_CDS            1 (default): keep a JVM class-data-sharing archive of the broker's
#                        classes in the cache (written when the first broker of a cache stops
#                        cleanly, used by every later JVM; halves a broker's start-up); 0: off
#
# Each cluster is one process with process.roles=broker,controller on 127.0.0.1, with its
# files under DIR/NAME: server.properties, log4j2.properties, data/, logs/server.log,
# logs/stdout.log, pid, ports.
#
# The source cluster has a second client listener, SASL_SSL (SCRAM-SHA-512 over TLS), on
# its own port; every other listener (and inter-broker traffic) is PLAINTEXT. Its
# certificates are made with openssl when the cluster is first configured, under
# DIR/source/tls: ca.pem (the CA clients trust), broker.pem (the broker's key and
# certificate, for 127.0.0.1 and localhost); the SCRAM user "tributary" and its random
# password (DIR/source/sasl.password) are written into the metadata when the storage is
# formatted. DIR/env names them (TRIBUTARY_TEST_SOURCE_SASL_*, TRIBUTARY_TEST_SASL_*).
set -euo pipefail

HARNESS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SELF="$HARNESS_DIR/$(basename "${BASH_SOURCE[0]}")"
KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
KAFKA_LOG4J_VERSION="${KAFKA_LOG4J_VERSION:-2.24.3}"
CACHE_ROOT="${TRIBUTARY_CACHE:-${HOME:-/root}/.cache/tributary}"
KAFKA_HOME="$CACHE_ROOT/kafka-$KAFKA_VERSION"
LIBS="$KAFKA_HOME/libs"
KAFKA_HEAP="${KAFKA_HEAP:--Xmx512m -Xms512m}"
KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:-}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
KAFKA_CDS="${KAFKA_CDS:-1}"
CLUSTERS=(source target)
SASL_USER=tributary

log() { echo "kafka.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# ---------------------------------------------------------------------------- jars

fetch() {
	if [[ -f "$LIBS/.complete" ]]; then
		return 0
	fi
	command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
	command -v java >/dev/null || die "java not found (Kafka $KAFKA_VERSION needs Java 17+)"
	mkdir -p "$KAFKA_HOME"
	# Serialise concurrent fetches (e.g. two checkouts starting tests at once).
	exec 9>"$KAFKA_HOME/.fetch.lock"
	flock 9
	if [[ -f "$LIBS/.complete" ]]; then
		exec 9>&-
		return 0
	fi
	log "fetching org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its runtime dependencies into $LIBS"
	local tmp="$KAFKA_HOME/libs.tmp.$$"
	rm -rf "$tmp"
	mkdir -p "$tmp"
	local t0=$SECONDS
	if ! mvn -q -B -Dstyle.color=never -f "$HARNESS_DIR/pom.xml" \
		-Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$KAFKA_LOG4J_VERSION" \
		dependency:copy-dependencies -DoutputDirectory="$tmp" >&2; then
		rm -rf "$tmp"
		die "mvn could not fetch Kafka $KAFKA_VERSION"
	fi
	[[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after fetch"; }
	(cd "$tmp" && ls -1 *.jar) >"$tmp/.complete"
	rm -rf "$LIBS" "$KAFKA_HOME"/cds-*.jsa*
	mv "$tmp" "$LIBS"
	log "fetched $(($(wc -l <"$LIBS/.complete"))) jars in $((SECONDS - t0)) s"
	exec 9>&-
}

# ---------------------------------------------------------------------------- class-data sharing

# A dynamic CDS archive of the classes a broker loads (Kafka, Scala, ...). Keyed by the JVM
# build, since an archive only maps into the JVM that wrote it.
cds_path() {
	echo "$KAFKA_HOME/cds-$(java -version 2>&1 | cksum | cut -d' ' -f1).jsa"
}

# cds_flags CDIR [dump]: sets the CDS array to use the archive if it exists, else (with
# "dump", for brokers) to write it when this JVM exits, unless another JVM already does.
cds_flags() {
	CDS=()
	[[ "$KAFKA_CDS" == 1 ]] || return 0
	local jsa
	jsa="$(cds_path)"
	if [[ -s "$jsa" ]]; then
		CDS=("-XX:SharedArchiveFile=$jsa")
		return 0
	fi
	[[ "${2:-}" == dump ]] || return 0
	# A dump that never finished (its broker was killed) frees the slot after an hour.
	find "$jsa.dumping" -maxdepth 0 -mmin +60 -exec rmdir {} \; 2>/dev/null || true
	if mkdir "$jsa.dumping" 2>/dev/null; then
		CDS=("-XX:ArchiveClassesAtExit=$jsa.tmp.$$")
		echo "$jsa.tmp.$$" >"$1/cds-dump"
	fi
}

# cds_finish CDIR OK: after a broker exited, keep its archive if it exited cleanly (OK=1).
cds_finish() {
	local cdir="$1" ok="$2" tmp final
	[[ -f "$cdir/cds-dump" ]] || return 0
	tmp="$(<"$cdir/cds-dump")"
	final="${tmp%.tmp.*}"
	rm -f "$cdir/cds-dump"
	if [[ "$ok" == 1 && -s "$tmp" ]]; then
		mv -f "$tmp" "$final"
	else
		rm -f "$tmp"
	fi
	rmdir "$final.dumping" 2>/dev/null || true
}

# ---------------------------------------------------------------------------- ports

# Ports are taken below the kernel's ephemeral range so that no client connection can
# hold one as its local port when a cluster restarts on it.
ALLOCATED=" "
free_port() {
	local lo=20000 hi=32000 eph_lo
	if read -r eph_lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null && ((eph_lo > lo + 1000)); then
		hi=$((eph_lo - 1))
	fi
	local p tries=0
	while ((tries++ < 500)); do
		p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo)))
		[[ "$ALLOCATED" == *" $p "* ]] && continue
		if command -v ss >/dev/null; then
			[[ -n "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]] && continue
		elif (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			continue
		fi
		ALLOCATED+="$p "
		echo "$p"
		return 0
	done
	die "no free port found"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------------------- one cluster

check_name() {
	case "${1:-}" in
	source | target) ;;
	*) die "cluster name must be source or target, got '${1:-}'" ;;
	esac
}

pid_of() { # prints the pid of a running cluster, fails if not running
	local f="$1/$2/pid" pid
	[[ -f "$f" ]] || return 1
	pid="$(<"$f")"
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
	# Guard against a recycled pid.
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -c "kafka.Kafka $1/$2/server.properties" >/dev/null || return 1
	echo "$pid"
}

random_cluster_id() { # a Kafka Uuid: 16 random bytes, url-safe base64 without padding
	local id
	while :; do
		id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
		[[ "$id" != -* ]] && { echo "$id"; return; }
	done
}

# make_tls CDIR: once, a CA and a broker certificate for 127.0.0.1/localhost signed by it
# (EC P-256: fast to make), under CDIR/tls, and a random SCRAM password in
# CDIR/sasl.password.
make_tls() {
	local cdir="$1" tls="$1/tls"
	if [[ ! -s "$tls/broker.pem" ]]; then
		command -v openssl >/dev/null || die "openssl not found (needed for the SASL_SSL listener)"
		rm -rf "$tls"
		mkdir -p "$tls"
		chmod 700 "$tls"
		(
			cd "$tls"
			openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
				-subj "/CN=tributary test CA" -keyout ca-key.pem -out ca.pem \
				-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
			openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
				-subj "/CN=127.0.0.1" -keyout broker-key.pem -out broker.csr
			printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" \
				"extendedKeyUsage=serverAuth" "keyUsage=critical,digitalSignature" >broker.ext
			openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
				-days 30 -extfile broker.ext -out broker-cert.pem
			# Kafka's PEM keystore: an unencrypted PKCS#8 key, then the certificate.
			openssl pkcs8 -topk8 -nocrypt -in broker-key.pem -out broker.pem.tmp
			cat broker-cert.pem >>broker.pem.tmp
			mv broker.pem.tmp broker.pem
		) >"$cdir/logs/tls.log" 2>&1 || { cat "$cdir/logs/tls.log" >&2; die "making the SASL_SSL certificates failed"; }
	fi
	if [[ ! -s "$cdir/sasl.password" ]]; then
		(umask 077 && head -c18 /dev/urandom | base64 | tr '+/' '-_' >"$cdir/sasl.password.tmp")
		mv "$cdir/sasl.password.tmp" "$cdir/sasl.password"
	fi
}

# configure DIR NAME: writes ports, cluster.id, server.properties and log4j2.properties once.
configure() {
	local dir="$1" name="$2" cdir="$1/$2"
	mkdir -p "$cdir/data" "$cdir/logs"
	if [[ ! -f "$cdir/ports" ]]; then
		if [[ "$name" == source && "${KAFKA_WAN:-0}" == 1 ]]; then
			echo "$(free_port) $(free_port) $(free_port) $(free_port) $(free_port)" >"$cdir/ports"
		elif [[ "$name" == source ]]; then
			echo "$(free_port) $(free_port) $(free_port)" >"$cdir/ports"
		else
			echo "$(free_port) $(free_port)" >"$cdir/ports"
		fi
	fi
	local bport cport sport wport pport
	read -r bport cport sport wport pport _ <"$cdir/ports"
	[[ -f "$cdir/cluster.id" ]] || random_cluster_id >"$cdir/cluster.id"
	local listeners="PLAINTEXT://127.0.0.1:$bport,CONTROLLER://127.0.0.1:$cport"
	local advertised="PLAINTEXT://127.0.0.1:$bport"
	local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
	if [[ -n "$sport" ]]; then
		make_tls "$cdir"
		listeners+=",SASL_SSL://127.0.0.1:$sport"
		advertised+=",SASL_SSL://127.0.0.1:$sport"
		protocols+=",SASL_SSL:SASL_SSL"
	fi
	if [[ -n "$wport" ]]; then
		listeners+=",WAN://127.0.0.1:$wport"
		advertised+=",WAN://127.0.0.1:$pport"
		protocols+=",WAN:PLAINTEXT"
	fi
	cat >"$cdir/server.properties" <<EOF
# tributary test cluster "$name" (generated by test/harness/kafka.sh)
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=$listeners
advertised.listeners=$advertised
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=$protocols
log.dirs=$cdir/data

# One broker: every internal topic and the default replication factor must be 1.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# After a crash (kill-cluster) the restarted node can only re-register once the controller
# has expired its previous session. Shorter than the default 9 s, but not so short that a
# loaded 2-core machine (three tributary processes, two brokers, -race) makes the broker
# miss its own controller's heartbeat and fence itself: 4 s did exactly that.
broker.session.timeout.ms=8000
broker.heartbeat.interval.ms=1000

# Tests create their topics explicitly.
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0

# Transactions: the default 15 min ceiling; abort timed-out transactions within ~1 s of
# their timeout (default check interval 10 s) so zombie/timeout tests stay short.
transaction.max.timeout.ms=900000
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000
EOF
	if [[ -n "$sport" ]]; then
		cat >>"$cdir/server.properties" <<EOF

# SASL_SSL for clients only: SCRAM-SHA-512 (users in the metadata, added at format time)
# over TLS with PEM files; no client certificates.
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$cdir/tls/broker.pem
listener.name.sasl_ssl.ssl.truststore.type=PEM
listener.name.sasl_ssl.ssl.truststore.location=$cdir/tls/ca.pem
listener.name.sasl_ssl.ssl.client.auth=none
EOF
	fi
	cat >"$cdir/log4j2.properties" <<EOF
# Broker logs of tributary test cluster "$name" go to $cdir/logs/server.log.
status = warn
name = tributary-kafka-$name
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = $cdir/logs/server.log
appender.file.filePattern = $cdir/logs/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 100MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 2
rootLogger.level = info
rootLogger.appenderRef.file.ref = FILE
# As in Kafka's own config/log4j2.yaml: keep the request logger and friends quiet.
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.network.name = kafka.network.RequestChannel\$
logger.network.level = warn
logger.zk.name = org.apache.zookeeper
logger.zk.level = warn
EOF
}

java_cmd() { # java_cmd CDIR JVMFLAGS...: sets the JAVA array
	local cdir="$1"
	shift
	JAVA=(java "$@" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
		-XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
		"-Dlog4j2.configurationFile=$cdir/log4j2.properties" "-Dkafka.logs.dir=$cdir/logs"
		-cp "$LIBS/*")
}

# start_one DIR NAME: format (first time), launch in the background, wait until it serves.
start_one() {
	local dir="$1" name="$2" cdir="$1/$2" pid
	if pid="$(pid_of "$dir" "$name")"; then
		log "$name already running (pid $pid)"
		return 0
	fi
	configure "$dir" "$name"
	local bport cport sport
	read -r bport cport sport _ <"$cdir/ports"
	if port_open "$bport" || port_open "$cport" || { [[ -n "$sport" ]] && port_open "$sport"; }; then
		die "$name: port $bport, $cport${sport:+ or $sport} is already in use"
	fi
	if [[ ! -f "$cdir/data/meta.properties" ]]; then
		cds_flags "$cdir"
		java_cmd "$cdir" -Xmx256m -XX:TieredStopAtLevel=1 ${CDS[@]+"${CDS[@]}"}
		local scram=()
		[[ -n "$sport" ]] && scram=(--add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$(<"$cdir/sasl.password")]")
		if ! "${JAVA[@]}" kafka.tools.StorageTool format --ignore-formatted \
			-t "$(<"$cdir/cluster.id")" -c "$cdir/server.properties" ${scram[@]+"${scram[@]}"} \
			</dev/null >"$cdir/logs/format.log" 2>&1; then
			cat "$cdir/logs/format.log" >&2
			die "$name: formatting $cdir/data failed"
		fi
	fi
	local logf="$cdir/logs/server.log" from=0
	[[ -f "$logf" ]] && from=$(stat -c %s "$logf")
	# shellcheck disable=SC2206
	local heap=($KAFKA_HEAP) extra=($KAFKA_JVM_OPTS)
	cds_flags "$cdir" dump
	java_cmd "$cdir" "${heap[@]}" ${CDS[@]+"${CDS[@]}"} ${extra[@]+"${extra[@]}"}
	echo "=== $(date -Is) starting $name" >>"$cdir/logs/stdout.log"
	# setsid + all fds redirected: the broker outlives this script and never holds a
	# caller's pipes open (Go's exec waits for those).
	# The JVM writes its own pid (bash execs into java), whether or not setsid had to fork.
	rm -f "$cdir/pid"
	setsid bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$cdir/pid" \
		"${JAVA[@]}" kafka.Kafka "$cdir/server.properties" </dev/null >>"$cdir/logs/stdout.log" 2>&1 &
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -s "$cdir/pid" ]] && break
		sleep 0.05
	done
	[[ -s "$cdir/pid" ]] || die "$name: the broker process did not start"
	pid="$(<"$cdir/pid")"
	local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
	while :; do
		if ! kill -0 "$pid" 2>/dev/null; then
			log "$name (pid $pid) exited during start-up; last lines of its logs:"
			tail -n 30 "$cdir/logs/stdout.log" >&2 || true
			[[ -f "$logf" ]] && tail -n 30 "$logf" >&2
			rm -f "$cdir/pid"
			cds_finish "$cdir" 0
			return 1
		fi
		# (server.log may have rolled over since we measured it)
		[[ -f "$logf" ]] && (($(stat -c %s "$logf") < from)) && from=0
		if port_open "$bport" && [[ -f "$logf" ]] &&
			tail -c +$((from + 1)) "$logf" | grep -c "Kafka Server started" >/dev/null; then
			break
		fi
		if ((SECONDS >= deadline)); then
			log "$name (pid $pid) did not start within $KAFKA_START_TIMEOUT s; stopping it"
			[[ -f "$logf" ]] && tail -n 30 "$logf" >&2
			stop_one "$dir" "$name" || true
			return 1
		fi
		sleep 0.1
	done
	log "$name started: 127.0.0.1:$bport${sport:+ (SASL_SSL 127.0.0.1:$sport)} (pid $pid)"
}

# stop_one DIR NAME [KILL]: TERM then KILL after KAFKA_STOP_TIMEOUT; fine when not running.
stop_one() {
	local dir="$1" name="$2" sig="${3:-TERM}" cdir="$1/$2" pid
	if ! pid="$(pid_of "$dir" "$name")"; then
		rm -f "$cdir/pid"
		return 0
	fi
	kill -"$sig" "$pid" 2>/dev/null || true
	local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT)) clean=1
	[[ "$sig" == KILL ]] && clean=0
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline && clean == 1)); then
			log "$name (pid $pid) still running after $KAFKA_STOP_TIMEOUT s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
			clean=0
		fi
		sleep 0.1
	done
	rm -f "$cdir/pid"
	cds_finish "$cdir" "$clean"
	[[ -f "$cdir/logs/stdout.log" ]] && echo "=== $(date -Is) stopped $name ($sig)" >>"$cdir/logs/stdout.log"
	log "$name stopped (pid $pid, $sig)"
}

write_env() {
	local dir="$1" s ss t w wp
	read -r s _ ss w wp _ <"$dir/source/ports"
	read -r t _ <"$dir/target/ports"
	cat >"$dir/env" <<EOF
TRIBUTARY_TEST_SOURCE_BOOTSTRAP=127.0.0.1:$s
TRIBUTARY_TEST_TARGET_BOOTSTRAP=127.0.0.1:$t
TRIBUTARY_TEST_SOURCE_SASL_BOOTSTRAP=127.0.0.1:$ss
TRIBUTARY_TEST_SOURCE_SASL_CA=$dir/source/tls/ca.pem
TRIBUTARY_TEST_SASL_USER=$SASL_USER
TRIBUTARY_TEST_SASL_PASSWORD=$(<"$dir/source/sasl.password")
TRIBUTARY_TEST_KAFKA_DIR=$dir
TRIBUTARY_TEST_KAFKA_SH=$SELF
EOF
	if [[ -n "$w" ]]; then
		cat >>"$dir/env" <<EOF
TRIBUTARY_TEST_SOURCE_WAN_LISTENER=127.0.0.1:$w
TRIBUTARY_TEST_SOURCE_WAN_BOOTSTRAP=127.0.0.1:$wp
EOF
	fi
	cat "$dir/env"
}

# ---------------------------------------------------------------------------- commands

need_dir() {
	[[ -n "${1:-}" ]] || die "usage: kafka.sh $CMD DIR${2:+ $2}"
	mkdir -p "$1"
	cd "$1" && pwd
}

CMD="${1:-}"
shift || true
case "$CMD" in
fetch)
	fetch
	echo "$LIBS"
	;;
start)
	DIR="$(need_dir "${1:-}")"
	fetch
	t0=$(date +%s%N)
	# Ports first (serially, so the two clusters never pick the same ones), then start both
	# JVMs at once.
	for c in "${CLUSTERS[@]}"; do configure "$DIR" "$c"; done
	pids=()
	for c in "${CLUSTERS[@]}"; do
		start_one "$DIR" "$c" &
		pids+=($!)
	done
	rc=0
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	if ((rc != 0)); then
		for c in "${CLUSTERS[@]}"; do stop_one "$DIR" "$c" || true; done
		die "start failed; logs are under $DIR"
	fi
	log "both clusters up in $((($(date +%s%N) - t0) / 1000000)) ms"
	write_env "$DIR"
	;;
stop)
	DIR="$(need_dir "${1:-}")"
	pids=()
	for c in "${CLUSTERS[@]}"; do
		stop_one "$DIR" "$c" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || true; done
	;;
start-cluster)
	DIR="$(need_dir "${1:-}" "source|target")"
	check_name "${2:-}"
	[[ -f "$DIR/$2/ports" ]] || die "$DIR/$2 was never started with 'kafka.sh start $DIR'"
	fetch
	start_one "$DIR" "$2"
	;;
stop-cluster | kill-cluster)
	DIR="$(need_dir "${1:-}" "source|target")"
	check_name "${2:-}"
	if [[ "$CMD" == kill-cluster ]]; then stop_one "$DIR" "$2" KILL; else stop_one "$DIR" "$2"; fi
	;;
status)
	DIR="$(need_dir "${1:-}")"
	for c in "${CLUSTERS[@]}"; do
		if pid="$(pid_of "$DIR" "$c")"; then
			read -r bp _ <"$DIR/$c/ports"
			echo "$c running pid=$pid bootstrap=127.0.0.1:$bp"
		else
			echo "$c stopped"
		fi
	done
	;;
logs)
	DIR="$(need_dir "${1:-}")"
	n="${2:-50}"
	for c in "${CLUSTERS[@]}"; do
		for f in "$DIR/$c/logs/server.log" "$DIR/$c/logs/stdout.log"; do
			[[ -f "$f" ]] || continue
			echo "----- last $n lines of $f"
			tail -n "$n" "$f"
		done
	done
	;;
*)
	sed -n '2,/^set -euo/p' "$SELF" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
