//go:build tools

package tributary

import (
	_ "cloud.google.com/go/pubsub/v2"
	_ "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	_ "github.com/hamba/avro/v2"
	_ "github.com/hashicorp/raft"
	_ "github.com/hashicorp/raft-wal"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/riferrei/srclient"
	_ "github.com/twmb/franz-go/pkg/kfake"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/sync/errgroup"
)
