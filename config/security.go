package config

import (
	"strconv"
	"strings"

	"github.com/tributary-dev/tributary/internal/nodecert"
)

// TLSFiles returns the files of security.tls, ok false when TLS is not
// configured.
func (c *Config) TLSFiles() (f nodecert.Files, ok bool) {
	t := c.Security.TLS
	if t == nil {
		return nodecert.Files{}, false
	}
	return nodecert.Files{CA: t.CAFile, Cert: t.CertFile, Key: t.KeyFile}, true
}

// security checks security.tls: all three files or none; they must exist and
// parse, the key must be private to its owner, and the certificate must name
// this node (node.id and node.region), since a node's identity comes from its
// certificate. Reading the files here lets `config check` catch a wrong
// certificate before a node starts with it.
func (v *validator) security() {
	t := v.c.Security.TLS
	if t == nil {
		return
	}
	missing := false
	for _, f := range []struct{ key, val string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
		if f.val == "" {
			v.errorf("security.tls."+f.key, "required: security.tls needs ca_file, cert_file and key_file")
			missing = true
		}
	}
	if missing {
		return
	}
	for i, j := range v.c.Cluster.Join {
		if strings.HasPrefix(j, "http://") {
			v.errorf("cluster.join["+strconv.Itoa(i)+"]", "%q: members serve https when security.tls is set; write host:port", j)
		}
	}
	b, err := nodecert.Load(nodecert.Files{CA: t.CAFile, Cert: t.CertFile, Key: t.KeyFile})
	if err != nil {
		v.errorf("security.tls", "%v", err)
		return
	}
	n := v.c.Node
	if b.ID != n.ID || b.Region != n.Region {
		v.errorf("security.tls.cert_file", "certificate %s names node %q in region %q (%s), but node.id is %q and node.region is %q",
			t.CertFile, b.ID, b.Region, nodecert.URI(b.Region, b.ID), n.ID, n.Region)
	}
}
