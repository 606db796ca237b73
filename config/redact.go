package config

import (
	"bytes"
	"net/url"
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
// sasl.jaas.config, sasl.oauthbearer.config (it may carry a client secret or a
// token), and key material (ending in ".key", or ssl.key.pem).
func IsSecretProperty(key string) bool {
	k := strings.ToLower(key)
	return strings.Contains(k, "password") || strings.Contains(k, "secret") ||
		strings.Contains(k, "sasl.jaas.config") || strings.Contains(k, "sasl.oauthbearer.config") ||
		strings.HasSuffix(k, ".key") || k == "ssl.key.pem"
}

// SecretValues lists the secret values written in the config: the values of
// secret Kafka properties, schema registry passwords and passwords in
// registry URLs. The daemon redacts them from every log line, error and HTTP
// answer, as a net under their being kept out at the source. Files the config
// only names (hash_key_file) are not read here.
func (c *Config) SecretValues() []string {
	var out []string
	for _, k := range c.Kafka {
		if k == nil {
			continue
		}
		for key, val := range k.Properties {
			if IsSecretProperty(key) && val != "" {
				out = append(out, val)
			}
		}
		if r := k.SchemaRegistry; r != nil {
			if r.Password != "" {
				out = append(out, string(r.Password))
			}
			if u, err := url.Parse(r.URL); err == nil && u.User != nil {
				if p, ok := u.User.Password(); ok && p != "" {
					out = append(out, p, url.PathEscape(p), url.QueryEscape(p))
				}
			}
		}
	}
	return out
}
