package kafkaclient

import (
	"sync"
	"sync/atomic"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// AdminClient is an admin client whose librdkafka log goes where its Logs sends it.
// Use the embedded *kafka.AdminClient for requests, and AdminClient.Close.
type AdminClient struct {
	*kafka.AdminClient
	p    *kafka.Producer // nil without Logs
	done chan struct{}   // closed when p's events are drained
	once sync.Once
	// access is the newest authentication or TLS error the client reported
	// (a kafka.Error), nil before any.
	access atomic.Value
}

// AccessError returns the newest error with which the brokers refused the
// client — a failed SASL authentication or TLS handshake — or nil. Requests
// that fail for that reason only say that no broker answered ("broker
// transport failure"); this says why. Only an admin client made with Logs
// sees these errors.
func (a *AdminClient) AccessError() error {
	if e, ok := a.access.Load().(kafka.Error); ok {
		return e
	}
	return nil
}

// IsAccessError reports whether e is the brokers refusing the client: a failed
// SASL authentication or TLS handshake.
func IsAccessError(e kafka.Error) bool {
	switch e.Code() {
	case kafka.ErrAuthentication, kafka.ErrSaslAuthenticationFailed, kafka.ErrSsl:
		return true
	}
	return false
}

// NewAdmin creates an admin client from cm (built by Config for the Admin
// role). confluent-kafka-go forwards logs only for producers and consumers
// (kafka.NewAdminClient would reject the go.logs.* properties), so with logs
// the admin client is derived from a producer that never produces; librdkafka
// makes a producer instance for a plain admin client too. With nil logs it is a
// plain admin client, and librdkafka writes its log to stderr.
func NewAdmin(cm *kafka.ConfigMap, logs *Logs) (*AdminClient, error) {
	if logs == nil {
		a, err := kafka.NewAdminClient(cm)
		if err != nil {
			return nil, err
		}
		return &AdminClient{AdminClient: a}, nil
	}
	pc := make(kafka.ConfigMap, len(*cm)+5)
	for k, v := range *cm {
		pc[k] = v
	}
	pc["go.delivery.reports"] = false
	// The producer's Go channels default to 1M entries (24 MB) each.
	pc["go.events.channel.size"] = 16
	pc["go.produce.channel.size"] = 0
	p, err := kafka.NewProducer(logs.Attach(&pc))
	if err != nil {
		return nil, err
	}
	a, err := kafka.NewAdminClientFromProducer(p)
	if err != nil {
		p.Close()
		return nil, err
	}
	ad := &AdminClient{AdminClient: a, p: p, done: make(chan struct{})}
	go func() {
		defer close(ad.done)
		// Client errors (brokers down...) are in the log already, as they
		// are for a plain admin client, whose events nobody reads; drained
		// so that the producer keeps serving its queue. Access errors are
		// kept for AccessError.
		for ev := range p.Events() {
			if e, ok := ev.(kafka.Error); ok && IsAccessError(e) {
				ad.access.Store(e)
			}
		}
	}()
	return ad, nil
}

// Close closes the client. It is idempotent.
func (a *AdminClient) Close() {
	a.once.Do(func() {
		a.AdminClient.Close()
		if a.p != nil {
			a.p.Close()
			<-a.done
		}
	})
}
