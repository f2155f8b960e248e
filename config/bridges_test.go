package config

import (
	"errors"
	"strings"
	"testing"
)

// The bridges a mosquitto.conf's connection sections make are compared with
// the same bridges in this YAML in internal/mosqconf's tests.

// TestYAMLBridgeErrors: a mistake in the bridges key is an error at the
// line and column of the value it is about, naming the bridge and the key
// in the file's spelling.
func TestYAMLBridgeErrors(t *testing.T) {
	const head = "bridges:\n  - name: b\n    addresses: [h]\n    topics: [{pattern: a/#}]\n" // a good bridge, lines 1-4
	tests := []struct {
		yaml      string
		line, col int
		msg       string
	}{
		{"bridges: {}\n", 1, 10, "want a list of bridges, got a mapping"},
		{"bridges: [x]\n", 1, 11, `bridge 1: want a mapping`},
		{"bridges:\n  - addresses: [h]\n", 2, 5, "bridge 1: a bridge needs a name"},
		{"bridges:\n  - name: 7\n", 2, 11, `bridge 1: name: want a string, got integer 7`},
		{head + "    adresses: [h2]\n", 5, 5, `bridge "b": unknown key "adresses" (did you mean "addresses"?)`},
		{head + "    addresses: [h2]\n", 5, 5, `bridge "b": addresses: set again (first set at line 3)`},
		{head + "    tls: {ca: x}\n", 5, 11, `bridge "b": tls: unknown key "ca"`},
		{head + "    tls: yes\n", 5, 10, `bridge "b": tls: want a mapping`},
		{"bridges:\n  - name: b\n    addresses: h\n", 3, 16, `bridge "b": addresses: want a list, got string "h"`},
		{"bridges:\n  - name: b\n    addresses: [h, 7]\n", 3, 20, `bridge "b": addresses: want a string, got integer 7`},
		{"bridges:\n  - name: b\n    addresses: [h]\n    topics: [{qos: 1}]\n", 4, 14, `bridge "b": topics: a topic needs a pattern`},
		{"bridges:\n  - name: b\n    addresses: [h]\n    topics:\n      - pattern: a\n        qos: 3\n", 6, 14, `bridge "b": topics: qos: 3 is not 0, 1 or 2`},
		{"bridges:\n  - name: b\n    addresses: [h]\n    topics: [{pattern: a, direction: sideways}]\n", 4, 38, `topics: direction: "sideways" is not out, in or both`},
		{"bridges:\n  - name: b\n    addresses: [h]\n    topics: [{pattern: a, prefix: x}]\n", 4, 27, `topics: unknown key "prefix"`},
		{"bridges:\n  - name: b\n    topics: [{pattern: a}]\n", 2, 5, `bridge "b": addresses: a bridge needs the remote broker's address`},
		{"bridges:\n  - name: b\n    addresses: [h]\n", 2, 5, `bridge "b": topics: a bridge needs at least one topic`},
		{"bridges:\n  - name: b\n    addresses: [h]\n    topics:\n      - {pattern: a}\n      - {pattern: a, local_prefix: x/+}\n", 6, 9, `bridge "b": topics: local prefix "x/+"`},
		{"bridges:\n  - name: b\n    addresses: [\"h:0\"]\n    topics: [{pattern: a}]\n", 3, 16, `bridge "b": addresses: "h:0": port "0"`},
		{head + "    keepalive: 2s\n", 5, 16, `bridge "b": keepalive: 2s is under the minimum of 5s`},
		{head + "    keepalive: 0\n", 5, 16, `bridge "b": keepalive: 0s is under the minimum of 5s`},
		{head + "    keepalive: 5500ms\n", 5, 16, `bridge "b": keepalive: 5.5s is not a whole number of seconds`},
		{head + "    restart_timeout: [10s, 5s]\n", 5, 22, `bridge "b": restart_timeout: the cap 5s is under the base 10s`},
		{head + "    restart_timeout: [1s]\n", 5, 22, `bridge "b": restart_timeout: want a duration, or [base, cap]; got a list of 1`},
		{head + "    restart_timeout: 0s\n", 5, 22, `bridge "b": restart_timeout: 0s: must be above 0`},
		{head + "    protocol_version: mqttv4\n", 5, 23, `bridge "b": protocol_version: "mqttv4" is not mqttv31, mqttv311 or mqttv50`},
		{head + "    remote_password: pw\n", 5, 22, `bridge "b": remote_password: needs remote_username`},
		{head + "    tls: {cert_file: c.pem, ca_file: ca.pem}\n", 5, 22, `bridge "b": tls.cert_file: tls.cert_file and tls.key_file go together`},
		{head + "    tls: {insecure: true}\n", 5, 21, `bridge "b": tls.ca_file: TLS needs tls.ca_file`},
		{head + "    remote_client_id: x\n    local_client_id: x\n", 6, 22, `bridge "b": local_client_id: "x" is the remote_client_id too`},
		{head + "  - name: b\n    addresses: [h]\n    topics: [{pattern: a}]\n", 5, 11, `bridge "b": name: the name is used twice`},
		{head + "    clean_session: yes\n", 5, 20, `bridge "b": clean_session: want true or false`},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(tc.yaml), "b.yaml")
		var e *Error
		if !errors.As(err, &e) || e.Line != tc.line || e.Column != tc.col || e.Key != "bridges" || !strings.Contains(e.Error(), tc.msg) {
			t.Errorf("%q:\n %v\n want b.yaml:%d:%d: bridges: ...%s...", tc.yaml, err, tc.line, tc.col, tc.msg)
		}
	}
}
