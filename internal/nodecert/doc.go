// Package nodecert is what config and coord share about a node's certificate:
// the tributary://<region>/<node-id> URI that binds a node's identity to its
// region, loading the cluster CA, the node certificate and its key (refusing a
// key file others can read), and the TLS configurations nodes use between
// themselves. It depends on the standard library only, so that config stays a
// leaf.
package nodecert
