# tributary container image (make image).
#
# Stage 1 builds the binary with cgo: confluent-kafka-go links its bundled, static
# librdkafka for glibc, so the runtime stage needs a glibc image of the same Debian
# release (bookworm), not Alpine or a static distroless image.
# Stage 2 is debian:bookworm-slim with a numeric non-root user. It keeps /bin/sh on
# purpose: the Kubernetes manifests (deploy/kubernetes) run this image as an
# initContainer that copies the key files out of their Secret volumes with mode 0600,
# which tributary insists on and a Secret volume with fsGroup does not give.

ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${GO_IMAGE} AS build
# golang:*-bookworm ships gcc and libc6-dev, which cgo needs.
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# VERSION is stamped into main.version (cmd/tributary/version.go); `tributary version`
# prints it with the Go and librdkafka versions.
ARG VERSION=dev
RUN CGO_ENABLED=1 go build -trimpath \
      -ldflags "-X main.version=${VERSION}" \
      -o /out/tributary ./cmd/tributary \
 && /out/tributary version

FROM ${RUNTIME_IMAGE}
ARG VERSION=dev
LABEL org.opencontainers.image.title="tributary" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/tributary-dev/tributary"
# ca-certificates: TLS to Kafka (SASL_SSL), schema registries and Google APIs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 tributary \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/tributary --shell /usr/sbin/nologin tributary \
 && mkdir -p /etc/tributary/policies /var/lib/tributary \
 && chown 10001:10001 /var/lib/tributary \
 && chmod 0700 /var/lib/tributary
COPY --from=build /out/tributary /usr/local/bin/tributary
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/tributary
# node.raft_addr and node.http_addr of the shipped configs (deploy/kubernetes,
# deploy/systemd): Raft 7400, HTTP (API, /metrics, probes, status page) 7480.
EXPOSE 7400 7480
# node.data_dir: the Raft log, its stable store and snapshots.
VOLUME ["/var/lib/tributary"]
ENTRYPOINT ["/usr/local/bin/tributary"]
CMD ["run", "--config", "/etc/tributary/config.yaml"]
