package codec

import (
	"bytes"
	"testing"
)

// golden is one packet with its exact wire form. The same table drives the
// decode test (wire -> pkt), the encode test (pkt -> wire, or canon when the
// wire form is a legal but non-canonical one) and seeds the fuzz targets.
type golden struct {
	name   string
	v      byte   // protocol level the packet is decoded and encoded at
	wire   []byte // the whole frame: fixed header and body
	canon  []byte // what Append yields, when it differs from wire (decode-only forms)
	client bool   // a PUBLISH a client receives: decoded with DecodeClient
	pkt    any    // *Connect, *Connack, *Publish, *Ack, *Subscribe, *Suback, *Unsubscribe, *Disconnect, *ping
}

// ping stands for PINGREQ and PINGRESP, which have no struct in the codec.
type ping struct{ Type Type }

func bs(s string) []byte { return []byte(s) }

// props returns a Present mask with the given properties set.
func props(ids ...PropID) uint64 {
	var m uint64
	for _, id := range ids {
		m |= 1 << id
	}
	return m
}

func user(kv ...string) []UserProperty {
	var u []UserProperty
	for i := 0; i < len(kv); i += 2 {
		u = append(u, UserProperty{Key: bs(kv[i]), Value: bs(kv[i+1])})
	}
	return u
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// payload125 makes the one fixture whose remaining length needs two bytes.
var payload125 = bytes.Repeat([]byte{'z'}, 125)

var goldens = []golden{
	// ---- MQTT 3.1 (level 3) ----
	{name: "v3 CONNECT MQIsdp will user pass", v: V31, wire: []byte{
		0x10, 0x1f, // CONNECT, remaining length 31
		0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', // protocol name "MQIsdp"
		0x03,       // protocol level 3
		0xce,       // flags: username, password, will QoS 1, will, clean session
		0x00, 0x3c, // keep alive 60 s
		0x00, 0x03, 'c', '3', '1', // client id "c31"
		0x00, 0x01, 'w', // will topic "w"
		0x00, 0x03, 'b', 'y', 'e', // will payload "bye"
		0x00, 0x01, 'u', // username "u"
		0x00, 0x01, 'p', // password "p"
	}, pkt: &Connect{ProtocolName: bs("MQIsdp"), Version: V31, CleanStart: true, KeepAlive: 60,
		ClientID: bs("c31"), WillFlag: true, WillQoS: 1, WillTopic: bs("w"), WillPayload: bs("bye"),
		UsernameFlag: true, Username: bs("u"), PasswordFlag: true, Password: bs("p")}},
	{name: "v3 CONNECT bridge (Mosquitto try_private)", v: V31, wire: []byte{
		0x10, 0x10, // CONNECT, remaining length 16
		0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', // protocol name "MQIsdp"
		0x83,       // protocol level 3 with the bridge bit 0x80
		0x00,       // flags: none (a persistent session)
		0x00, 0x3c, // keep alive 60 s
		0x00, 0x02, 'b', 'r', // client id "br"
	}, pkt: &Connect{ProtocolName: bs("MQIsdp"), Version: V31, Bridge: true, KeepAlive: 60, ClientID: bs("br")}},
	{name: "v3 PUBLISH QoS0", v: V31, wire: []byte{
		0x30, 0x04, // PUBLISH QoS 0, remaining length 4
		0x00, 0x01, 't', // topic "t"
		'!', // payload "!"
	}, pkt: &Publish{Topic: bs("t"), Payload: bs("!")}},

	// ---- MQTT 3.1.1 (level 4) ----
	{name: "v4 CONNECT minimal", v: V311, wire: []byte{
		0x10, 0x0d, // CONNECT, remaining length 13
		0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name "MQTT"
		0x04,       // protocol level 4
		0x02,       // flags: clean session
		0x00, 0x1e, // keep alive 30 s
		0x00, 0x01, 'c', // client id "c"
	}, pkt: &Connect{ProtocolName: bs("MQTT"), Version: V311, CleanStart: true, KeepAlive: 30, ClientID: bs("c")}},
	{name: "v4 CONNECT bridge (Mosquitto try_private)", v: V311, wire: []byte{
		0x10, 0x0e, // CONNECT, remaining length 14
		0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name "MQTT"
		0x84,       // protocol level 4 with the bridge bit 0x80
		0x00,       // flags: none (a persistent session)
		0x00, 0x3c, // keep alive 60 s
		0x00, 0x02, 'b', 'r', // client id "br"
	}, pkt: &Connect{ProtocolName: bs("MQTT"), Version: V311, Bridge: true, KeepAlive: 60, ClientID: bs("br")}},
	{name: "v4 CONNECT empty id will QoS2 retain user binary pass", v: V311, wire: []byte{
		0x10, 0x1d, // CONNECT, remaining length 29
		0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name "MQTT"
		0x04,       // protocol level 4
		0xf6,       // flags: username, password, will retain, will QoS 2, will, clean session
		0x02, 0x58, // keep alive 600 s
		0x00, 0x00, // client id "" [MQTT-3.1.3-6]
		0x00, 0x03, 'a', '/', 'b', // will topic "a/b"
		0x00, 0x00, // will payload, empty
		0x00, 0x04, 'u', 's', 'e', 'r', // username "user"
		0x00, 0x02, 0x00, 0xff, // password, binary 00 ff
	}, pkt: &Connect{ProtocolName: bs("MQTT"), Version: V311, CleanStart: true, KeepAlive: 600,
		WillFlag: true, WillQoS: 2, WillRetain: true, WillTopic: bs("a/b"),
		UsernameFlag: true, Username: bs("user"), PasswordFlag: true, Password: []byte{0x00, 0xff}}},
	{name: "v4 CONNACK session present", v: V311, wire: []byte{
		0x20, 0x02, // CONNACK, remaining length 2
		0x01, // acknowledge flags: session present
		0x00, // return code 0, accepted
	}, pkt: &Connack{SessionPresent: true}},
	{name: "v4 CONNACK not authorized", v: V311, wire: []byte{
		0x20, 0x02, // CONNACK, remaining length 2
		0x00, // acknowledge flags: none
		0x05, // return code 5, not authorized
	}, pkt: &Connack{Code: ReasonCode(V3NotAuthorized)}},
	{name: "v4 PUBLISH QoS0", v: V311, wire: []byte{
		0x30, 0x07, // PUBLISH QoS 0, remaining length 7
		0x00, 0x03, 'a', '/', 'b', // topic "a/b"
		'h', 'i', // payload "hi"
	}, pkt: &Publish{Topic: bs("a/b"), Payload: bs("hi")}},
	{name: "v4 PUBLISH QoS1 dup retain", v: V311, wire: []byte{
		0x3b, 0x08, // PUBLISH DUP, QoS 1, RETAIN, remaining length 8
		0x00, 0x01, 't', // topic "t"
		0x12, 0x34, // packet id 0x1234
		'x', 'y', 'z', // payload "xyz"
	}, pkt: &Publish{Dup: true, QoS: 1, Retain: true, Topic: bs("t"), PacketID: 0x1234, Payload: bs("xyz")}},
	{name: "v4 PUBLISH QoS2 empty payload", v: V311, wire: []byte{
		0x34, 0x05, // PUBLISH QoS 2, remaining length 5
		0x00, 0x01, 'q', // topic "q"
		0x00, 0x01, // packet id 1
	}, pkt: &Publish{QoS: 2, Topic: bs("q"), PacketID: 1}},
	{name: "v4 PUBLISH two-byte remaining length", v: V311, wire: cat([]byte{
		0x30, 0x80, 0x01, // PUBLISH QoS 0, remaining length 128 (0x80 0x01)
		0x00, 0x01, 't', // topic "t"
	}, payload125), // payload: 125 x 'z'
		pkt: &Publish{Topic: bs("t"), Payload: payload125}},
	{name: "v4 PUBACK", v: V311, wire: []byte{
		0x40, 0x02, // PUBACK, remaining length 2
		0x00, 0x07, // packet id 7
	}, pkt: &Ack{Type: PUBACK, PacketID: 7}},
	{name: "v4 PUBREC", v: V311, wire: []byte{
		0x50, 0x02, // PUBREC, remaining length 2
		0x00, 0x08, // packet id 8
	}, pkt: &Ack{Type: PUBREC, PacketID: 8}},
	{name: "v4 PUBREL", v: V311, wire: []byte{
		0x62, 0x02, // PUBREL, flags 0010 [MQTT-3.6.1-1], remaining length 2
		0x00, 0x09, // packet id 9
	}, pkt: &Ack{Type: PUBREL, PacketID: 9}},
	{name: "v4 PUBCOMP", v: V311, wire: []byte{
		0x70, 0x02, // PUBCOMP, remaining length 2
		0x00, 0x0a, // packet id 10
	}, pkt: &Ack{Type: PUBCOMP, PacketID: 10}},
	{name: "v4 SUBSCRIBE", v: V311, wire: []byte{
		0x82, 0x0e, // SUBSCRIBE, flags 0010 [MQTT-3.8.1-1], remaining length 14
		0x00, 0x0a, // packet id 10
		0x00, 0x03, 'a', '/', '+', // filter "a/+"
		0x01,                      // options: QoS 1
		0x00, 0x03, 'b', '/', '#', // filter "b/#"
		0x02, // options: QoS 2
	}, pkt: &Subscribe{PacketID: 10, Filters: []Subscription{{Filter: bs("a/+"), QoS: 1}, {Filter: bs("b/#"), QoS: 2}}}},
	{name: "v4 SUBACK", v: V311, wire: []byte{
		0x90, 0x06, // SUBACK, remaining length 6
		0x00, 0x0a, // packet id 10
		0x00, 0x01, 0x02, 0x80, // return codes: QoS 0, QoS 1, QoS 2, failure
	}, pkt: &Suback{Type: SUBACK, PacketID: 10, Codes: []ReasonCode{0, 1, 2, 0x80}}},
	{name: "v4 UNSUBSCRIBE", v: V311, wire: []byte{
		0xa2, 0x0a, // UNSUBSCRIBE, flags 0010 [MQTT-3.10.1-1], remaining length 10
		0x00, 0x0b, // packet id 11
		0x00, 0x03, 'a', '/', '+', // filter "a/+"
		0x00, 0x01, 'b', // filter "b"
	}, pkt: &Unsubscribe{PacketID: 11, Filters: [][]byte{bs("a/+"), bs("b")}}},
	{name: "v4 UNSUBACK", v: V311, wire: []byte{
		0xb0, 0x02, // UNSUBACK, remaining length 2
		0x00, 0x0b, // packet id 11
	}, pkt: &Suback{Type: UNSUBACK, PacketID: 11}},
	{name: "v4 PINGREQ", v: V311, wire: []byte{0xc0, 0x00}, // PINGREQ, remaining length 0
		pkt: &ping{PINGREQ}},
	{name: "v4 PINGRESP", v: V311, wire: []byte{0xd0, 0x00}, // PINGRESP, remaining length 0
		pkt: &ping{PINGRESP}},
	{name: "v4 DISCONNECT", v: V311, wire: []byte{0xe0, 0x00}, // DISCONNECT, remaining length 0
		pkt: &Disconnect{Type: DISCONNECT}},

	// ---- MQTT 5.0 (level 5) ----
	{name: "v5 CONNECT every connect and will property", v: V5, wire: []byte{
		0x10, 0x6f, // CONNECT, remaining length 111
		0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name "MQTT"
		0x05,       // protocol level 5
		0xee,       // flags: username, password, will retain, will QoS 1, will, clean start
		0x00, 0x0a, // keep alive 10 s
		0x24,                         // property length 36
		0x11, 0x00, 0x00, 0x00, 0x78, // session expiry interval 120 s
		0x15, 0x00, 0x01, 'm', // authentication method "m"
		0x16, 0x00, 0x02, 0x01, 0x02, // authentication data 01 02
		0x17, 0x00, // request problem information 0
		0x19, 0x01, // request response information 1
		0x21, 0x00, 0x14, // receive maximum 20
		0x22, 0x00, 0x0a, // topic alias maximum 10
		0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v', // user property k=v
		0x27, 0x00, 0x00, 0x04, 0x00, // maximum packet size 1024
		0x00, 0x02, 'c', '5', // client id "c5"
		0x29,       // will property length 41
		0x01, 0x01, // payload format indicator 1 (UTF-8)
		0x02, 0x00, 0x00, 0x0e, 0x10, // message expiry interval 3600 s
		0x03, 0x00, 0x03, 't', 'x', 't', // content type "txt"
		0x08, 0x00, 0x01, 'r', // response topic "r"
		0x09, 0x00, 0x02, 0xca, 0xfe, // correlation data ca fe
		0x18, 0x00, 0x00, 0x00, 0x05, // will delay interval 5 s
		0x26, 0x00, 0x01, 'a', 0x00, 0x01, 'b', // user property a=b
		0x26, 0x00, 0x01, 'a', 0x00, 0x01, 'c', // user property a=c (keys may repeat)
		0x00, 0x03, 'w', '/', 't', // will topic "w/t"
		0x00, 0x04, 'g', 'o', 'n', 'e', // will payload "gone"
		0x00, 0x01, 'u', // username "u"
		0x00, 0x02, 'p', 'w', // password "pw"
	}, pkt: &Connect{ProtocolName: bs("MQTT"), Version: V5, CleanStart: true, KeepAlive: 10,
		Props: Properties{Present: props(PropSessionExpiry, PropAuthMethod, PropAuthData, PropRequestProblemInfo,
			PropRequestResponseInfo, PropReceiveMaximum, PropTopicAliasMaximum, PropUser, PropMaximumPacketSize),
			SessionExpiry: 120, AuthMethod: bs("m"), AuthData: []byte{1, 2}, RequestProblemInfo: 0,
			RequestResponseInfo: 1, ReceiveMaximum: 20, TopicAliasMaximum: 10, User: user("k", "v"),
			MaximumPacketSize: 1024},
		ClientID: bs("c5"), WillFlag: true, WillQoS: 1, WillRetain: true,
		WillProps: Properties{Present: props(PropPayloadFormat, PropMessageExpiry, PropContentType,
			PropResponseTopic, PropCorrelationData, PropWillDelay, PropUser),
			PayloadFormat: 1, MessageExpiry: 3600, ContentType: bs("txt"), ResponseTopic: bs("r"),
			CorrelationData: []byte{0xca, 0xfe}, WillDelay: 5, User: user("a", "b", "a", "c")},
		WillTopic: bs("w/t"), WillPayload: bs("gone"),
		UsernameFlag: true, Username: bs("u"), PasswordFlag: true, Password: bs("pw")}},
	{name: "v5 CONNECT password without username", v: V5, wire: []byte{
		0x10, 0x14, // CONNECT, remaining length 20
		0x00, 0x04, 'M', 'Q', 'T', 'T', // protocol name "MQTT"
		0x05,       // protocol level 5
		0x40,       // flags: password only, allowed in MQTT 5 (§3.1.2.9)
		0x00, 0x3c, // keep alive 60 s
		0x00,                 // property length 0
		0x00, 0x02, 'i', 'd', // client id "id"
		0x00, 0x03, 't', 'o', 'k', // password "tok"
	}, pkt: &Connect{ProtocolName: bs("MQTT"), Version: V5, KeepAlive: 60, ClientID: bs("id"),
		PasswordFlag: true, Password: bs("tok")}},
	{name: "v5 CONNACK every connack property", v: V5, wire: []byte{
		0x20, 0x44, // CONNACK, remaining length 68
		0x00,                         // acknowledge flags: none
		0x00,                         // reason code Success
		0x41,                         // property length 65
		0x11, 0xff, 0xff, 0xff, 0xff, // session expiry interval: never
		0x12, 0x00, 0x03, 'i', 'd', '1', // assigned client identifier "id1"
		0x13, 0x00, 0x1e, // server keep alive 30 s
		0x15, 0x00, 0x01, 'm', // authentication method "m"
		0x16, 0x00, 0x01, 0x03, // authentication data 03
		0x1a, 0x00, 0x02, 'r', 'i', // response information "ri"
		0x1c, 0x00, 0x02, 's', '2', // server reference "s2"
		0x1f, 0x00, 0x02, 'o', 'k', // reason string "ok"
		0x21, 0x00, 0x64, // receive maximum 100
		0x22, 0x00, 0x10, // topic alias maximum 16
		0x24, 0x01, // maximum QoS 1
		0x25, 0x00, // retain available 0
		0x26, 0x00, 0x01, 'x', 0x00, 0x01, 'y', // user property x=y
		0x27, 0x00, 0x01, 0x00, 0x00, // maximum packet size 65536
		0x28, 0x01, // wildcard subscription available 1
		0x29, 0x00, // subscription identifiers available 0
		0x2a, 0x01, // shared subscription available 1
	}, pkt: &Connack{Props: Properties{Present: props(PropSessionExpiry, PropAssignedClientID,
		PropServerKeepAlive, PropAuthMethod, PropAuthData, PropResponseInfo, PropServerReference,
		PropReasonString, PropReceiveMaximum, PropTopicAliasMaximum, PropMaximumQoS, PropRetainAvailable,
		PropUser, PropMaximumPacketSize, PropWildcardSubAvailable, PropSubIDAvailable, PropSharedSubAvailable),
		SessionExpiry: 0xffffffff, AssignedClientID: bs("id1"), ServerKeepAlive: 30, AuthMethod: bs("m"),
		AuthData: []byte{3}, ResponseInfo: bs("ri"), ServerReference: bs("s2"), ReasonString: bs("ok"),
		ReceiveMaximum: 100, TopicAliasMaximum: 16, MaximumQoS: 1, RetainAvailable: 0, User: user("x", "y"),
		MaximumPacketSize: 65536, WildcardSubAvailable: 1, SubIDAvailable: 0, SharedSubAvailable: 1}}},
	{name: "v5 CONNACK session present", v: V5, wire: []byte{
		0x20, 0x03, // CONNACK, remaining length 3
		0x01, // acknowledge flags: session present
		0x00, // reason code Success
		0x00, // property length 0
	}, pkt: &Connack{SessionPresent: true}},
	{name: "v5 CONNACK not authorized", v: V5, wire: []byte{
		0x20, 0x03, // CONNACK, remaining length 3
		0x00, // acknowledge flags: none
		0x87, // reason code Not authorized
		0x00, // property length 0
	}, pkt: &Connack{Code: NotAuthorized}},
	{name: "v5 PUBLISH every publish property", v: V5, client: true, // a Subscription Identifier only travels server to client [MQTT-3.3.4-6]
		wire: []byte{
			0x32, 0x2f, // PUBLISH QoS 1, remaining length 47
			0x00, 0x03, 'a', '/', 'b', // topic "a/b"
			0x00, 0x05, // packet id 5
			0x25,       // property length 37
			0x01, 0x01, // payload format indicator 1 (UTF-8)
			0x02, 0x00, 0x00, 0x00, 0x3c, // message expiry interval 60 s
			0x03, 0x00, 0x02, 'j', 's', // content type "js"
			0x08, 0x00, 0x04, 'r', 'e', '/', '1', // response topic "re/1"
			0x09, 0x00, 0x02, 0x00, 0x01, // correlation data 00 01
			0x0b, 0xac, 0x02, // subscription identifier 300 (varint ac 02)
			0x23, 0x00, 0x03, // topic alias 3
			0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v', // user property k=v
			'{', '}', // payload "{}"
		}, pkt: &Publish{QoS: 1, Topic: bs("a/b"), PacketID: 5, Payload: bs("{}"),
			Props: Properties{Present: props(PropPayloadFormat, PropMessageExpiry, PropContentType,
				PropResponseTopic, PropCorrelationData, PropSubscriptionID, PropTopicAlias, PropUser),
				PayloadFormat: 1, MessageExpiry: 60, ContentType: bs("js"), ResponseTopic: bs("re/1"),
				CorrelationData: []byte{0, 1}, SubIDs: []uint32{300}, TopicAlias: 3, User: user("k", "v")}}},
	{name: "v5 PUBLISH empty topic with alias", v: V5, wire: []byte{
		0x30, 0x07, // PUBLISH QoS 0, remaining length 7
		0x00, 0x00, // topic "": the alias names it (§3.3.2.3.4)
		0x03,             // property length 3
		0x23, 0x00, 0x03, // topic alias 3
		'p', // payload "p"
	}, pkt: &Publish{Payload: bs("p"), Props: Properties{Present: props(PropTopicAlias), TopicAlias: 3}}},
	{name: "v5 PUBLISH QoS2 no properties", v: V5, wire: []byte{
		0x34, 0x07, // PUBLISH QoS 2, remaining length 7
		0x00, 0x01, 't', // topic "t"
		0x00, 0x02, // packet id 2
		0x00, // property length 0
		'!',  // payload "!"
	}, pkt: &Publish{QoS: 2, Topic: bs("t"), PacketID: 2, Payload: bs("!")}},
	{name: "v5 PUBLISH to client two subscription ids", v: V5, client: true, wire: []byte{
		0x31, 0x09, // PUBLISH QoS 0, RETAIN, remaining length 9
		0x00, 0x01, 't', // topic "t"
		0x05,       // property length 5
		0x0b, 0x01, // subscription identifier 1
		0x0b, 0x80, 0x01, // subscription identifier 128 (varint 80 01) [MQTT-3.3.4-3]
	}, pkt: &Publish{Retain: true, Topic: bs("t"), Props: Properties{Present: props(PropSubscriptionID),
		SubIDs: []uint32{1, 128}}}},
	{name: "v5 PUBACK success short form", v: V5, wire: []byte{
		0x40, 0x02, // PUBACK, remaining length 2: reason Success, no properties [MQTT-3.4.2.1]
		0x00, 0x01, // packet id 1
	}, pkt: &Ack{Type: PUBACK, PacketID: 1}},
	{name: "v5 PUBACK code and properties", v: V5, wire: []byte{
		0x40, 0x10, // PUBACK, remaining length 16
		0x00, 0x02, // packet id 2
		0x10,                       // reason code No matching subscribers
		0x0c,                       // property length 12
		0x1f, 0x00, 0x02, 'n', 'o', // reason string "no"
		0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v', // user property k=v
	}, pkt: &Ack{Type: PUBACK, PacketID: 2, Code: NoMatchingSubscribers,
		Props: Properties{Present: props(PropReasonString, PropUser), ReasonString: bs("no"), User: user("k", "v")}}},
	{name: "v5 PUBREC code only", v: V5, wire: []byte{
		0x50, 0x03, // PUBREC, remaining length 3
		0x00, 0x03, // packet id 3
		0x97, // reason code Quota exceeded; property length omitted [MQTT-3.5.2.2.1]
	}, pkt: &Ack{Type: PUBREC, PacketID: 3, Code: QuotaExceeded}},
	{name: "v5 PUBREL not found reason string", v: V5, wire: []byte{
		0x62, 0x08, // PUBREL, flags 0010, remaining length 8
		0x00, 0x04, // packet id 4
		0x92,                  // reason code Packet Identifier not found
		0x04,                  // property length 4
		0x1f, 0x00, 0x01, 'x', // reason string "x"
	}, pkt: &Ack{Type: PUBREL, PacketID: 4, Code: PacketIDNotFound,
		Props: Properties{Present: props(PropReasonString), ReasonString: bs("x")}}},
	{name: "v5 PUBCOMP success with user property", v: V5, wire: []byte{
		0x70, 0x0b, // PUBCOMP, remaining length 11
		0x00, 0x05, // packet id 5
		0x00,                                   // reason code Success, needed because properties follow
		0x07,                                   // property length 7
		0x26, 0x00, 0x01, 'a', 0x00, 0x01, 'b', // user property a=b
	}, pkt: &Ack{Type: PUBCOMP, PacketID: 5, Props: Properties{Present: props(PropUser), User: user("a", "b")}}},
	{name: "v5 PUBACK explicit success empty properties", v: V5, wire: []byte{
		0x40, 0x04, // PUBACK, remaining length 4
		0x00, 0x06, // packet id 6
		0x00, // reason code Success
		0x00, // property length 0
	}, canon: []byte{0x40, 0x02, 0x00, 0x06}, // Append picks the short form
		pkt: &Ack{Type: PUBACK, PacketID: 6}},
	{name: "v5 PUBREC explicit success", v: V5, wire: []byte{
		0x50, 0x03, // PUBREC, remaining length 3
		0x00, 0x07, // packet id 7
		0x00, // reason code Success
	}, canon: []byte{0x50, 0x02, 0x00, 0x07}, // Append picks the short form
		pkt: &Ack{Type: PUBREC, PacketID: 7}},
	{name: "v5 SUBSCRIBE options and properties", v: V5, wire: []byte{
		0x82, 0x29, // SUBSCRIBE, flags 0010, remaining length 41
		0x00, 0x10, // packet id 16
		0x09,       // property length 9
		0x0b, 0x07, // subscription identifier 7
		0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v', // user property k=v
		0x00, 0x03, 'a', '/', '#', // filter "a/#"
		0x04,                      // options: QoS 0, No Local
		0x00, 0x03, '+', '/', 'b', // filter "+/b"
		0x19,                                                         // options: QoS 1, Retain As Published, Retain Handling 1
		0x00, 0x0a, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 'c', // filter "$share/g/c"
		0x22,            // options: QoS 2, Retain Handling 2
		0x00, 0x01, 'd', // filter "d"
		0x2d, // options: QoS 1, No Local, Retain As Published, Retain Handling 2
	}, pkt: &Subscribe{PacketID: 16,
		Props: Properties{Present: props(PropSubscriptionID, PropUser), SubIDs: []uint32{7}, User: user("k", "v")},
		Filters: []Subscription{
			{Filter: bs("a/#"), NoLocal: true},
			{Filter: bs("+/b"), QoS: 1, RetainAsPublished: true, RetainHandling: 1},
			{Filter: bs("$share/g/c"), QoS: 2, RetainHandling: 2},
			{Filter: bs("d"), QoS: 1, NoLocal: true, RetainAsPublished: true, RetainHandling: 2},
		}}},
	{name: "v5 SUBACK reason string", v: V5, wire: []byte{
		0x90, 0x0b, // SUBACK, remaining length 11
		0x00, 0x10, // packet id 16
		0x04,                  // property length 4
		0x1f, 0x00, 0x01, 'r', // reason string "r"
		0x00, 0x01, 0x02, 0x87, // reason codes: QoS 0, QoS 1, QoS 2, Not authorized
	}, pkt: &Suback{Type: SUBACK, PacketID: 16, Props: Properties{Present: props(PropReasonString), ReasonString: bs("r")},
		Codes: []ReasonCode{Success, GrantedQoS1, GrantedQoS2, NotAuthorized}}},
	{name: "v5 SUBACK no properties", v: V5, wire: []byte{
		0x90, 0x04, // SUBACK, remaining length 4
		0x00, 0x11, // packet id 17
		0x00, // property length 0
		0x9e, // reason code Shared Subscriptions not supported
	}, pkt: &Suback{Type: SUBACK, PacketID: 17, Codes: []ReasonCode{SharedSubsNotSupported}}},
	{name: "v5 UNSUBSCRIBE user property", v: V5, wire: []byte{
		0xa2, 0x1b, // UNSUBSCRIBE, flags 0010, remaining length 27
		0x00, 0x20, // packet id 32
		0x07,                                   // property length 7
		0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v', // user property k=v
		0x00, 0x03, 'a', '/', '+', // filter "a/+"
		0x00, 0x0a, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 'x', // filter "$share/g/x"
	}, pkt: &Unsubscribe{PacketID: 32, Props: Properties{Present: props(PropUser), User: user("k", "v")},
		Filters: [][]byte{bs("a/+"), bs("$share/g/x")}}},
	{name: "v5 UNSUBACK reason codes", v: V5, wire: []byte{
		0xb0, 0x09, // UNSUBACK, remaining length 9
		0x00, 0x20, // packet id 32
		0x04,                  // property length 4
		0x1f, 0x00, 0x01, 'r', // reason string "r"
		0x00, 0x11, // reason codes: Success, No subscription existed
	}, pkt: &Suback{Type: UNSUBACK, PacketID: 32, Props: Properties{Present: props(PropReasonString), ReasonString: bs("r")},
		Codes: []ReasonCode{Success, NoSubscriptionExisted}}},
	{name: "v5 PINGREQ", v: V5, wire: []byte{0xc0, 0x00}, // PINGREQ, remaining length 0
		pkt: &ping{PINGREQ}},
	{name: "v5 PINGRESP", v: V5, wire: []byte{0xd0, 0x00}, // PINGRESP, remaining length 0
		pkt: &ping{PINGRESP}},
	{name: "v5 DISCONNECT normal short form", v: V5, wire: []byte{
		0xe0, 0x00, // DISCONNECT, remaining length 0: Normal disconnection [MQTT-3.14.2.1]
	}, pkt: &Disconnect{Type: DISCONNECT}},
	{name: "v5 DISCONNECT with will", v: V5, wire: []byte{
		0xe0, 0x01, // DISCONNECT, remaining length 1
		0x04, // reason code Disconnect with Will Message; property length omitted
	}, pkt: &Disconnect{Type: DISCONNECT, Code: DisconnectWithWill}},
	{name: "v5 DISCONNECT every disconnect property", v: V5, wire: []byte{
		0xe0, 0x19, // DISCONNECT, remaining length 25
		0x9c,                         // reason code Use another server
		0x17,                         // property length 23
		0x11, 0x00, 0x00, 0x00, 0x00, // session expiry interval 0
		0x1c, 0x00, 0x02, 's', '2', // server reference "s2"
		0x1f, 0x00, 0x03, 'b', 'y', 'e', // reason string "bye"
		0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v', // user property k=v
	}, pkt: &Disconnect{Type: DISCONNECT, Code: UseAnotherServer,
		Props: Properties{Present: props(PropSessionExpiry, PropServerReference, PropReasonString, PropUser),
			ServerReference: bs("s2"), ReasonString: bs("bye"), User: user("k", "v")}}},
	{name: "v5 DISCONNECT explicit success empty properties", v: V5, wire: []byte{
		0xe0, 0x02, // DISCONNECT, remaining length 2
		0x00, // reason code Normal disconnection
		0x00, // property length 0
	}, canon: []byte{0xe0, 0x00}, // Append picks the short form
		pkt: &Disconnect{Type: DISCONNECT}},
	{name: "v5 AUTH every auth property", v: V5, wire: []byte{
		0xf0, 0x17, // AUTH, remaining length 23
		0x18,                  // reason code Continue authentication
		0x15,                  // property length 21
		0x15, 0x00, 0x01, 'm', // authentication method "m"
		0x16, 0x00, 0x03, 0x01, 0x02, 0x03, // authentication data 01 02 03
		0x1f, 0x00, 0x01, 'c', // reason string "c"
		0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v', // user property k=v
	}, pkt: &Disconnect{Type: AUTH, Code: ContinueAuthentication,
		Props: Properties{Present: props(PropAuthMethod, PropAuthData, PropReasonString, PropUser),
			AuthMethod: bs("m"), AuthData: []byte{1, 2, 3}, ReasonString: bs("c"), User: user("k", "v")}}},
	{name: "v5 AUTH success short form", v: V5, wire: []byte{
		0xf0, 0x00, // AUTH, remaining length 0: Success [MQTT-3.15.2.1]
	}, pkt: &Disconnect{Type: AUTH}},
}

func TestGoldenDecode(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			got, err := decodeFrame(g.wire, g.v, g.client)
			if err != nil {
				t.Fatalf("decode % x: %v", g.wire, err)
			}
			if !samePacket(got, g.pkt) {
				t.Fatalf("decode % x\n got %+v\nwant %+v", g.wire, got, g.pkt)
			}
		})
	}
}

func TestGoldenEncode(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			want := g.wire
			if g.canon != nil {
				want = g.canon
			}
			prefix := []byte{0xaa, 0xbb} // Append must append, not overwrite
			got := appendPacket(append([]byte(nil), prefix...), g.pkt, g.v)
			if !bytes.Equal(got[:2], prefix) || !bytes.Equal(got[2:], want) {
				t.Fatalf("append\n got % x\nwant % x", got[2:], want)
			}
		})
	}
}

// TestGoldenCoverage keeps the table honest: every packet type at levels 4
// and 5, CONNECT at level 3, and every MQTT 5 property identifier.
func TestGoldenCoverage(t *testing.T) {
	types := map[byte]map[Type]bool{V31: {}, V311: {}, V5: {}}
	var seen uint64
	for _, g := range goldens {
		types[g.v][Type(g.wire[0]>>4)] = true
		switch p := g.pkt.(type) {
		case *Connect:
			seen |= p.Props.Present | p.WillProps.Present
		case *Connack:
			seen |= p.Props.Present
		case *Publish:
			seen |= p.Props.Present
		case *Ack:
			seen |= p.Props.Present
		case *Subscribe:
			seen |= p.Props.Present
		case *Suback:
			seen |= p.Props.Present
		case *Unsubscribe:
			seen |= p.Props.Present
		case *Disconnect:
			seen |= p.Props.Present
		}
	}
	for typ := CONNECT; typ <= DISCONNECT; typ++ {
		for _, v := range []byte{V311, V5} {
			if !types[v][typ] {
				t.Errorf("no level %d fixture for %v", v, typ)
			}
		}
	}
	if !types[V5][AUTH] {
		t.Error("no AUTH fixture")
	}
	if !types[V31][CONNECT] {
		t.Error("no level 3 CONNECT fixture")
	}
	for id := 1; id < len(propDefs); id++ {
		if propDefs[id].kind != kindNone && seen&(1<<id) == 0 {
			t.Errorf("property 0x%02x is in no fixture", id)
		}
	}
}

// TestOutgoingAppend: the broker's delivery path. Level 4 drops every
// property; level 5 adds expiry, subscription ids and alias before the raw
// forwarded properties.
func TestOutgoingAppend(t *testing.T) {
	o := Outgoing{Topic: bs("a/b"), Payload: bs("hi"),
		RawProps: []byte{0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v'}, // user property k=v
		Expiry:   10, HasExpiry: true, SubIDs: []uint32{1, 128}, TopicAlias: 2,
		PacketID: 7, QoS: 1, Retain: true}
	tests := []struct {
		name string
		o    Outgoing
		v    byte
		want []byte
		pub  Publish // what a client decodes
	}{
		{name: "v4 drops properties", o: o, v: V311, want: []byte{
			0x33, 0x09, // PUBLISH QoS 1, RETAIN, remaining length 9
			0x00, 0x03, 'a', '/', 'b', // topic "a/b"
			0x00, 0x07, // packet id 7
			'h', 'i', // payload "hi"
		}, pub: Publish{QoS: 1, Retain: true, Topic: bs("a/b"), PacketID: 7, Payload: bs("hi")}},
		{name: "v3 drops properties", o: o, v: V31, want: []byte{
			0x33, 0x09, // PUBLISH QoS 1, RETAIN, remaining length 9
			0x00, 0x03, 'a', '/', 'b', // topic "a/b"
			0x00, 0x07, // packet id 7
			'h', 'i', // payload "hi"
		}, pub: Publish{QoS: 1, Retain: true, Topic: bs("a/b"), PacketID: 7, Payload: bs("hi")}},
		{name: "v5 all per-delivery properties", o: o, v: V5, want: []byte{
			0x33, 0x1e, // PUBLISH QoS 1, RETAIN, remaining length 30
			0x00, 0x03, 'a', '/', 'b', // topic "a/b"
			0x00, 0x07, // packet id 7
			0x14,                         // property length 20
			0x02, 0x00, 0x00, 0x00, 0x0a, // message expiry interval 10 s
			0x0b, 0x01, // subscription identifier 1
			0x0b, 0x80, 0x01, // subscription identifier 128
			0x23, 0x00, 0x02, // topic alias 2
			0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v', // raw: user property k=v
			'h', 'i', // payload "hi"
		}, pub: Publish{QoS: 1, Retain: true, Topic: bs("a/b"), PacketID: 7, Payload: bs("hi"),
			Props: Properties{Present: props(PropMessageExpiry, PropSubscriptionID, PropTopicAlias, PropUser),
				MessageExpiry: 10, SubIDs: []uint32{1, 128}, TopicAlias: 2, User: user("k", "v")}}},
		{name: "v5 QoS2 dup no properties", o: Outgoing{Topic: bs("t"), QoS: 2, Dup: true, PacketID: 0x0102},
			v: V5, want: []byte{
				0x3c, 0x06, // PUBLISH DUP, QoS 2, remaining length 6
				0x00, 0x01, 't', // topic "t"
				0x01, 0x02, // packet id 0x0102
				0x00, // property length 0
			}, pub: Publish{Dup: true, QoS: 2, Topic: bs("t"), PacketID: 0x0102}},
		{name: "v5 QoS0 expiry 0 is still sent", o: Outgoing{Topic: bs("t"), HasExpiry: true, Payload: bs("x")},
			v: V5, want: []byte{
				0x30, 0x0a, // PUBLISH QoS 0, remaining length 10
				0x00, 0x01, 't', // topic "t"
				0x05,                         // property length 5
				0x02, 0x00, 0x00, 0x00, 0x00, // message expiry interval 0 s
				'x', // payload "x"
			}, pub: Publish{Topic: bs("t"), Payload: bs("x"),
				Props: Properties{Present: props(PropMessageExpiry)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.o.Append(nil, tc.v)
			if !bytes.Equal(got, tc.want) {
				t.Fatalf("Append\n got % x\nwant % x", got, tc.want)
			}
			if n := tc.o.Size(tc.v); n != len(got) {
				t.Errorf("Size = %d, Append wrote %d", n, len(got))
			}
			p, err := decodeFrame(got, tc.v, true)
			if err != nil {
				t.Fatalf("client decode: %v", err)
			}
			if !samePacket(p, &tc.pub) {
				t.Fatalf("client decode\n got %+v\nwant %+v", p, &tc.pub)
			}
		})
	}
}

// TestForwardProps: a received PUBLISH's properties, minus the per-hop ones
// [MQTT-3.3.2-4], [MQTT-3.3.2-17], [MQTT-3.3.2-18], feed Outgoing.RawProps.
func TestForwardProps(t *testing.T) {
	in := goldenByName(t, "v5 PUBLISH every publish property").pkt.(*Publish)
	got := in.Props.ForwardProps(nil)
	want := []byte{
		0x01, 0x01, // payload format indicator 1
		0x03, 0x00, 0x02, 'j', 's', // content type "js"
		0x08, 0x00, 0x04, 'r', 'e', '/', '1', // response topic "re/1"
		0x09, 0x00, 0x02, 0x00, 0x01, // correlation data 00 01
		0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v', // user property k=v
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("ForwardProps\n got % x\nwant % x", got, want)
	}
	if !in.Props.Has(PropTopicAlias) || !in.Props.Has(PropSubscriptionID) || !in.Props.Has(PropMessageExpiry) {
		t.Fatal("ForwardProps changed its receiver")
	}
}

func goldenByName(t testing.TB, name string) golden {
	t.Helper()
	for _, g := range goldens {
		if g.name == name {
			return g
		}
	}
	t.Fatalf("no golden %q", name)
	return golden{}
}

func TestAppendAck(t *testing.T) {
	tests := []struct {
		name string
		t    Type
		id   uint16
		code ReasonCode
		v    byte
		want []byte
	}{
		{"v4 PUBACK", PUBACK, 1, Success, V311, []byte{0x40, 0x02, 0x00, 0x01}},                  // PUBACK, len 2, id 1
		{"v4 PUBACK drops code", PUBACK, 1, QuotaExceeded, V311, []byte{0x40, 0x02, 0x00, 0x01}}, // 3.x has no reason codes
		{"v3 PUBREC", PUBREC, 0xfffe, Success, V31, []byte{0x50, 0x02, 0xff, 0xfe}},              // PUBREC, len 2, id 65534
		{"v4 PUBREL flags", PUBREL, 3, Success, V311, []byte{0x62, 0x02, 0x00, 0x03}},            // PUBREL flags 0010 [MQTT-3.6.1-1]
		{"v4 PUBCOMP", PUBCOMP, 4, Success, V311, []byte{0x70, 0x02, 0x00, 0x04}},                // PUBCOMP, len 2, id 4
		{"v5 PUBACK success short", PUBACK, 5, Success, V5, []byte{0x40, 0x02, 0x00, 0x05}},      // [MQTT-3.4.2.1]
		{"v5 PUBACK code", PUBACK, 6, NoMatchingSubscribers, V5, []byte{0x40, 0x03, 0x00, 0x06, 0x10}},
		{"v5 PUBREC code", PUBREC, 7, QuotaExceeded, V5, []byte{0x50, 0x03, 0x00, 0x07, 0x97}},
		{"v5 PUBREL not found", PUBREL, 8, PacketIDNotFound, V5, []byte{0x62, 0x03, 0x00, 0x08, 0x92}},
		{"v5 PUBCOMP not found", PUBCOMP, 9, PacketIDNotFound, V5, []byte{0x70, 0x03, 0x00, 0x09, 0x92}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendAck([]byte{0xaa}, tc.t, tc.id, tc.code, tc.v)
			if got[0] != 0xaa || !bytes.Equal(got[1:], tc.want) {
				t.Fatalf("AppendAck = % x, want % x", got[1:], tc.want)
			}
			// AppendAck is Ack.Append without properties.
			a := Ack{Type: tc.t, PacketID: tc.id, Code: tc.code}
			if full := a.Append(nil, tc.v); !bytes.Equal(full, tc.want) {
				t.Fatalf("Ack.Append = % x, want % x", full, tc.want)
			}
		})
	}
}

// TestVarintGolden checks the boundaries of the variable byte integer
// [MQTT-1.5.5]: the encoder always uses the fewest bytes [MQTT-1.5.5-1].
func TestVarintGolden(t *testing.T) {
	tests := []struct {
		v    int
		wire []byte
	}{
		{0, []byte{0x00}},
		{127, []byte{0x7f}},
		{128, []byte{0x80, 0x01}},
		{16383, []byte{0xff, 0x7f}},
		{16384, []byte{0x80, 0x80, 0x01}},
		{2097151, []byte{0xff, 0xff, 0x7f}},
		{2097152, []byte{0x80, 0x80, 0x80, 0x01}},
		{MaxVarint, []byte{0xff, 0xff, 0xff, 0x7f}},
	}
	for _, tc := range tests {
		if got := AppendVarint(nil, tc.v); !bytes.Equal(got, tc.wire) {
			t.Errorf("AppendVarint(%d) = % x, want % x", tc.v, got, tc.wire)
		}
		if n := VarintSize(tc.v); n != len(tc.wire) {
			t.Errorf("VarintSize(%d) = %d, want %d", tc.v, n, len(tc.wire))
		}
		got, n, err := readVarint(tc.wire)
		if err != nil || int(got) != tc.v || n != len(tc.wire) {
			t.Errorf("readVarint(% x) = %d, %d, %v", tc.wire, got, n, err)
		}
		h, err := ParseHeader(append([]byte{0x30}, tc.wire...), 0)
		if err != nil || h.Remaining != tc.v || h.Len != 1+len(tc.wire) || h.Type != PUBLISH {
			t.Errorf("ParseHeader(30 % x) = %+v, %v", tc.wire, h, err)
		}
	}
}

func TestTypeAndCodeStrings(t *testing.T) {
	if s := PUBLISH.String(); s != "PUBLISH" {
		t.Errorf("PUBLISH.String() = %q", s)
	}
	if s := Type(16).String(); s != "Type(16)" {
		t.Errorf("Type(16).String() = %q", s)
	}
	if s := PacketTooLarge.String(); s != "0x95" {
		t.Errorf("PacketTooLarge.String() = %q", s)
	}
	if Success.IsError() || GrantedQoS2.IsError() || !UnspecifiedError.IsError() {
		t.Error("IsError boundary is 0x80 [MQTT-2.4]")
	}
	if s := ErrTruncated.Error(); s != "codec: packet shorter than its fields" {
		t.Errorf("Error() = %q", s)
	}
	v3 := map[ReasonCode]byte{Success: V3Accepted, UnsupportedProtocolVersion: V3BadProtocolVersion,
		ClientIDNotValid: V3IdentifierRejected, BadUsernameOrPassword: V3BadUsernameOrPass,
		BadAuthenticationMethod: V3BadUsernameOrPass, NotAuthorized: V3NotAuthorized, Banned: V3NotAuthorized,
		ServerBusy: V3ServerUnavailable, UnspecifiedError: V3ServerUnavailable}
	for rc, want := range v3 {
		if got := V3ConnackCode(rc); got != want {
			t.Errorf("V3ConnackCode(%v) = %d, want %d", rc, got, want)
		}
	}
}
