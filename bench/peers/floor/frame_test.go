package main

import (
	"bytes"
	"testing"
)

func TestFrameLen(t *testing.T) {
	tests := []struct {
		name          string
		in            []byte
		header, total int
		ok, err       bool
	}{
		{name: "empty", in: nil},
		{name: "first byte only", in: []byte{0xc0}},
		{name: "pingreq", in: []byte{0xc0, 0x00}, header: 2, total: 2, ok: true},
		{name: "body missing", in: []byte{0x30, 0x05, 0x00}, header: 2, total: 7},
		// 0x80 0x01 = 128: two length bytes.
		{name: "two-byte length", in: append([]byte{0x30, 0x80, 0x01}, make([]byte, 128)...), header: 3, total: 131, ok: true},
		{name: "five length bytes", in: []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, err: true},
	}
	for _, tt := range tests {
		h, n, ok, err := frameLen(tt.in)
		if (err != nil) != tt.err || ok != tt.ok || (ok && (h != tt.header || n != tt.total)) {
			t.Errorf("%s: frameLen = %d, %d, %v, %v; want %d, %d, %v, err %v", tt.name, h, n, ok, err, tt.header, tt.total, tt.ok, tt.err)
		}
	}
}

func TestConnectVersion(t *testing.T) {
	body := []byte{
		0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name
		0x05,       // protocol level 5
		0x02,       // flags: clean start
		0x00, 0x3c, // keep alive 60
	}
	if v, err := connectVersion(body); err != nil || v != 5 {
		t.Fatalf("connectVersion = %d, %v; want 5", v, err)
	}
	if _, err := connectVersion(body[:5]); err == nil {
		t.Fatal("connectVersion of a cut body: no error")
	}
}

func TestParseFilters(t *testing.T) {
	v4 := []byte{
		0x00, 0x07, // packet id 7
		0x00, 0x03, 'a', '/', 'b', 0x01, // "a/b" QoS 1
		0x00, 0x01, 'c', 0x00, // "c" QoS 0
	}
	id, fs, err := parseFilters(v4, 4, true)
	if err != nil || id != [2]byte{0, 7} || len(fs) != 2 || fs[0] != (filter{"a/b", 1}) || fs[1] != (filter{"c", 0}) {
		t.Fatalf("parseFilters v4 = %v, %v, %v", id, fs, err)
	}
	v5 := []byte{
		0x00, 0x09, // packet id 9
		0x02, 0x0b, 0x01, // properties: subscription identifier 1
		0x00, 0x01, 'x', 0x02, // "x" QoS 2
	}
	id, fs, err = parseFilters(v5, 5, true)
	if err != nil || id != [2]byte{0, 9} || len(fs) != 1 || fs[0] != (filter{"x", 2}) {
		t.Fatalf("parseFilters v5 = %v, %v, %v", id, fs, err)
	}
	if _, _, err := parseFilters(v4[:5], 4, true); err == nil {
		t.Fatal("parseFilters of a cut body: no error")
	}
}

func TestAppendQoS0(t *testing.T) {
	q1 := []byte{
		0x3b,       // PUBLISH, DUP 1, QoS 1, RETAIN 1
		0x08,       // remaining length
		0x00, 0x03, // topic length
		'a', '/', 'b',
		0x12, 0x34, // packet id
		'h', // payload
	}
	topic, qos, id, idAt, err := publishTopic(q1[0], q1[2:])
	if err != nil || string(topic) != "a/b" || qos != 1 || id != [2]byte{0x12, 0x34} || idAt != 5 {
		t.Fatalf("publishTopic = %q, %d, %v, %d, %v", topic, qos, id, idAt, err)
	}
	want := []byte{
		0x31, // PUBLISH, QoS 0, RETAIN kept
		0x06, // remaining length less the packet id
		0x00, 0x03, 'a', '/', 'b',
		'h',
	}
	if got := appendQoS0(nil, q1, 2, qos, idAt); !bytes.Equal(got, want) {
		t.Fatalf("appendQoS0 = % x; want % x", got, want)
	}
	q0 := []byte{0x30, 0x04, 0x00, 0x01, 't', 'p'}
	if got := appendQoS0(nil, q0, 2, 0, 0); !bytes.Equal(got, q0) {
		t.Fatalf("appendQoS0 of QoS 0 = % x; want it unchanged", got)
	}
}

func TestAck(t *testing.T) {
	fs := []filter{{"a", 1}, {"b", 0}}
	if got, want := ack(0x90, 4, [2]byte{0, 1}, fs, true), []byte{0x90, 4, 0, 1, 1, 0}; !bytes.Equal(got, want) {
		t.Errorf("SUBACK v4 = % x; want % x", got, want)
	}
	if got, want := ack(0x90, 5, [2]byte{0, 1}, fs, true), []byte{0x90, 5, 0, 1, 0, 1, 0}; !bytes.Equal(got, want) {
		t.Errorf("SUBACK v5 = % x; want % x", got, want)
	}
	if got, want := ack(0xb0, 4, [2]byte{0, 2}, fs, false), []byte{0xb0, 2, 0, 2}; !bytes.Equal(got, want) {
		t.Errorf("UNSUBACK v4 = % x; want % x", got, want)
	}
}
