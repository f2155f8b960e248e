"""What Shoal's MQTT 5 end-to-end scripts share (see broker/e2e_v5_python_test.go).

Each script runs as

    /usr/bin/python3 SCRIPT HOST PORT SCENARIO [JSON-PARAMS]

and prints one JSON object per line, {"step": LABEL, ...}: what its paho
clients observed (CONNACK, SUBACK and UNSUBACK codes, received messages with
their properties, DISCONNECT reason codes). The scripts drive clients and
report; the Go tests assert. The last line is {"step": "done"}; on an
exception the script prints {"step": "error", ...} and exits 1.

Every wait is bounded: ACK seconds for an acknowledgement (missing one
raises) and whatever the scenario passes for messages (missing ones are just
not reported). The Go side also kills the process after a hard timeout.

Written for paho-mqtt 1.6 (Debian python3-paho-mqtt), whose MQTT 5 callbacks
take reason codes and properties as extra arguments.
"""

import json
import socket
import sys
import threading
import time
import traceback

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCodes
from paho.mqtt.subscribeoptions import SubscribeOptions

STEP = 3.0  # seconds a message may take where the script also waits for none
ACK = 10.0  # seconds any one acknowledgement may take: only a failure waits it out
START = time.monotonic()


def elapsed():
    """Seconds since the script started, for timing assertions."""
    return round(time.monotonic() - START, 3)


def emit(step, **fields):
    """Print one observation as a JSON line."""
    fields["step"] = step
    print(json.dumps(fields, sort_keys=True), flush=True)


def props_json(p):
    """Properties as a dict keyed by paho's names (ContentType, UserProperty as
    a list of [key, value] pairs in wire order, SubscriptionIdentifier as a
    list, binary values as hex)."""
    if p is None:
        return {}
    out = {}
    for k, v in p.json().items():
        if isinstance(v, (bytes, bytearray)):
            v = bytes(v).hex()
        out[k] = v
    return out


def make_props(packet_type, d):
    """Properties of packet_type from a dict shaped like props_json's output."""
    if not d:
        return None
    p = Properties(packet_type)
    for k, v in d.items():
        if k in ("CorrelationData", "AuthenticationData"):
            v = bytes.fromhex(v)
        elif k == "UserProperty":
            v = [tuple(kv) for kv in v]
        setattr(p, k, v)
    return p


# How long to let the broker finish with a connection that just sent
# DISCONNECT before the same client id connects again. The broker serves
# each connection on its own event loop, so a CONNECT on a new connection
# can be handled before the old connection's DISCONNECT and close; it is
# then a takeover of a live session, not a fresh start. 0.3 s is ample on
# loopback.
CLOSE_GRACE = 0.3


def reason(packet_type, code):
    return ReasonCodes(packet_type, identifier=code)


class Client:
    """A paho MQTT 5 client on its own network thread, with blocking,
    bounded helpers. It never reconnects by itself: a test reconnects with a
    new Client when it means to."""

    def __init__(self, env, client_id, will=None):
        self.env = env
        self.id = client_id
        self.c = mqtt.Client(client_id, protocol=mqtt.MQTTv5, reconnect_on_failure=False)
        self.cv = threading.Condition()
        self.connack = None
        self.messages = []
        self.acks = {}  # mid -> reason codes of SUBACK / UNSUBACK
        self.published = set()  # mids acknowledged (QoS 1/2) or written (QoS 0)
        self.disconnects = []
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_publish = self._on_publish
        self.c.on_disconnect = self._on_disconnect
        if will:
            self.c.will_set(will["topic"], will.get("payload"), will.get("qos", 0), will.get("retain", False),
                            properties=make_props(PacketTypes.WILLMESSAGE, will.get("properties")))

    # Callbacks, on paho's network thread.

    def _on_connect(self, client, userdata, flags, rc, properties):
        with self.cv:
            self.connack = {
                "reason": rc.value,
                "session_present": bool(flags.get("session present")),
                "properties": props_json(properties),
            }
            self.cv.notify_all()

    def _on_message(self, client, userdata, msg):
        with self.cv:
            self.messages.append({
                "topic": msg.topic,
                "payload": msg.payload.decode("utf-8", "replace"),
                "qos": msg.qos,
                "retain": bool(msg.retain),
                "properties": props_json(getattr(msg, "properties", None)),
                "t": elapsed(),
            })
            self.cv.notify_all()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        with self.cv:
            self.acks[mid] = [rc.value for rc in reason_codes]
            self.cv.notify_all()

    def _on_unsubscribe(self, client, userdata, mid, properties, reason_codes):
        if not isinstance(reason_codes, list):  # paho unwraps a single code
            reason_codes = [reason_codes]
        with self.cv:
            self.acks[mid] = [rc.value for rc in reason_codes]
            self.cv.notify_all()

    def _on_publish(self, client, userdata, mid):
        with self.cv:
            self.published.add(mid)
            self.cv.notify_all()

    def _on_disconnect(self, client, userdata, rc, properties=None):
        # A ReasonCodes comes from the server's DISCONNECT; an int is paho's
        # own status (0: we disconnected, 7: connection lost).
        if isinstance(rc, ReasonCodes):
            d = {"reason": rc.value, "properties": props_json(properties)}
        else:
            d = {"local": rc}
        d["t"] = elapsed()
        with self.cv:
            self.disconnects.append(d)
            self.cv.notify_all()

    # Blocking helpers, on the script's thread.

    def _wait(self, pred, what, timeout=ACK):
        with self.cv:
            if not self.cv.wait_for(pred, timeout):
                raise TimeoutError("%s: no %s within %.1fs" % (self.id, what, timeout))

    def connect(self, clean_start=True, keepalive=30, properties=None):
        """CONNECT, wait for CONNACK and return it as a dict."""
        self.c.connect(self.env.host, self.env.port, keepalive, clean_start=clean_start,
                       properties=make_props(PacketTypes.CONNECT, properties))
        self.c.loop_start()
        self._wait(lambda: self.connack is not None, "CONNACK")
        return self.connack

    def subscribe(self, subs, sub_id=None, properties=None, unchecked=False):
        """SUBSCRIBE to subs, a list of (filter, qos) or (filter, qos, opts)
        with opts keys no_local, rap, rh; return the SUBACK reason codes.
        unchecked skips paho's own filter validation, to send filters the
        broker must refuse."""
        props = dict(properties or {})
        if sub_id is not None:
            props["SubscriptionIdentifier"] = sub_id
        topics = []
        for s in subs:
            f, qos = s[0], s[1]
            o = s[2] if len(s) > 2 else {}
            topics.append((f, SubscribeOptions(qos=qos, noLocal=o.get("no_local", False),
                                               retainAsPublished=o.get("rap", False),
                                               retainHandling=o.get("rh", 0))))
        props = make_props(PacketTypes.SUBSCRIBE, props)
        if unchecked:
            # paho's private encoder: subscribe() would raise ValueError first.
            rc, mid = self.c._send_subscribe(False, [(f.encode("utf-8"), o) for f, o in topics], props)
        else:
            rc, mid = self.c.subscribe(topics, properties=props)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError("%s: subscribe: paho error %d" % (self.id, rc))
        self._wait(lambda: mid in self.acks, "SUBACK")
        return self.acks[mid]

    def send_subscribe(self, subs):
        """SUBSCRIBE without waiting for SUBACK (for a SUBSCRIBE the server
        answers with DISCONNECT)."""
        topics = [(s[0], SubscribeOptions(qos=s[1], noLocal=s[2].get("no_local", False))) for s in subs]
        self.c.subscribe(topics)

    def unsubscribe(self, filters):
        rc, mid = self.c.unsubscribe(filters)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError("%s: unsubscribe: paho error %d" % (self.id, rc))
        self._wait(lambda: mid in self.acks, "UNSUBACK")
        return self.acks[mid]

    def publish(self, topic, payload, qos=1, retain=False, properties=None):
        """PUBLISH and wait until it is acknowledged (QoS 1/2) or written (QoS 0)."""
        info = self.c.publish(topic, payload, qos, retain, properties=make_props(PacketTypes.PUBLISH, properties))
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError("%s: publish %r: paho error %d" % (self.id, topic, info.rc))
        self._wait(lambda: info.mid in self.published, "acknowledgement of PUBLISH %r" % topic)

    def send_publish(self, topic, payload, qos=0, properties=None):
        """PUBLISH without waiting (for one the server answers with DISCONNECT)."""
        self.c.publish(topic, payload, qos, properties=make_props(PacketTypes.PUBLISH, properties))

    def wait_messages(self, n, timeout=STEP):
        """Wait until n messages arrived or timeout passed; return all so far."""
        with self.cv:
            self.cv.wait_for(lambda: len(self.messages) >= n, timeout)
            return list(self.messages)

    def wait_payload(self, payload, timeout=STEP):
        """Wait until a message with this payload arrived or timeout passed;
        return all so far. A barrier: a live message published after the
        steps under test arrives after whatever they caused."""
        with self.cv:
            self.cv.wait_for(lambda: any(m["payload"] == payload for m in self.messages), timeout)
            return list(self.messages)

    def received(self):
        """Every message so far."""
        with self.cv:
            return list(self.messages)

    def settle(self, seconds):
        """Wait seconds more, then return every message so far (for asserting
        that nothing else came)."""
        time.sleep(seconds)
        with self.cv:
            return list(self.messages)

    def wait_disconnect(self, timeout=STEP):
        """Wait for the connection to end; return the disconnect records."""
        with self.cv:
            self.cv.wait_for(lambda: self.disconnects, timeout)
            return list(self.disconnects)

    def disconnect(self, code=0, properties=None):
        """Send DISCONNECT with a reason code and stop the network thread."""
        self.c.disconnect(reasoncode=reason(PacketTypes.DISCONNECT, code),
                          properties=make_props(PacketTypes.DISCONNECT, properties))
        self.c.loop_stop()

    def drop(self):
        """Close the TCP connection without DISCONNECT: to the broker, an
        abnormal close that publishes the will."""
        s = self.c.socket()
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.c.loop_stop()

    def stop(self):
        """Disconnect if still connected and stop the network thread. The
        DISCONNECT also wakes the thread at once; without it loop_stop waits
        out paho's one-second select timeout."""
        if self.c.is_connected():
            self.c.disconnect()
        self.c.loop_stop()


class Env:
    """A scenario's broker address, parameters and clients."""

    def __init__(self, host, port, params):
        self.host, self.port, self.params = host, port, params
        self.clients = []

    def client(self, client_id, will=None):
        c = Client(self, client_id, will)
        self.clients.append(c)
        return c

    def connected(self, client_id, clean_start=True, properties=None, will=None):
        """A new client, connected; fails unless CONNACK is a success."""
        c = self.client(client_id, will)
        ack = c.connect(clean_start=clean_start, properties=properties)
        if ack["reason"] != 0:
            raise RuntimeError("%s: CONNACK reason %#x" % (client_id, ack["reason"]))
        return c

    def close(self):
        for c in self.clients:
            try:
                c.stop()
            except Exception:  # best effort: the process is ending
                pass


def main(scenarios):
    """Run the scenario named in argv and report; the scripts' entry point."""
    if len(sys.argv) < 4:
        emit("error", error="usage: %s HOST PORT SCENARIO [JSON]" % sys.argv[0])
        sys.exit(2)
    host, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    params = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    fn = scenarios.get(name)
    if fn is None:
        emit("error", error="unknown scenario %r; have %s" % (name, sorted(scenarios)))
        sys.exit(2)
    env = Env(host, port, params)
    try:
        fn(env)
    except Exception as e:
        emit("error", error="%s: %s" % (type(e).__name__, e), trace=traceback.format_exc())
        env.close()
        sys.exit(1)
    env.close()
    emit("done")
