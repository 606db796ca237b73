package config

import (
	"bytes"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Redacted returns the config as YAML, defaults included, with secrets printed
// as <secret>: schema registry passwords and the Kafka properties that
// IsSecretProperty names. Use it wherever the config is printed or logged.
func (c *Config) Redacted() string {
	cp := *c
	if c.Kafka != nil {
		cp.Kafka = make(map[string]*Kafka, len(c.Kafka))
		for name, k := range c.Kafka {
			if k == nil {
				cp.Kafka[name] = nil
				continue
			}
			kc := *k
			if k.Properties != nil {
				kc.Properties = make(map[string]string, len(k.Properties))
				for key, val := range k.Properties {
					if IsSecretProperty(key) {
						val = Secret(val).String()
					}
					kc.Properties[key] = val
				}
			}
			cp.Kafka[name] = &kc
		}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&cp); err != nil {
		// Config holds only strings, numbers, maps and lists; Encode cannot fail on it.
		return "# encoding config: " + err.Error() + "\n"
	}
	_ = enc.Close()
	return b.String()
}

// IsSecretProperty reports whether a librdkafka property holds a secret, whose
// value must not be printed or logged: keys naming a password or secret,
// sasl.jaas.config, and key material (ending in ".key", or ssl.key.pem).
func IsSecretProperty(key string) bool {
	k := strings.ToLower(key)
	return strings.Contains(k, "password") || strings.Contains(k, "secret") ||
		strings.Contains(k, "sasl.jaas.config") || strings.HasSuffix(k, ".key") ||
		k == "ssl.key.pem"
}
