"""MQTT over WebSocket with Paho (transport="websockets"), for
broker.TestWebSocketPython.

Usage: /usr/bin/python3 websocket.py JSON

JSON holds host, ws_port, wss_port, path, and ca, cert, key (PEM files for
the wss client). Two clients connect: "py-ws" over ws with MQTT 3.1.1,
"py-wss" over wss with a client certificate and MQTT 5. Each subscribes to
py/in; then the Go test publishes there from a TCP client. Each client
waits (bounded) for that message, publishes "from <id>" to py/out, and
disconnects. The script prints JSON lines: {"step": "subscribed"},
{"step": "received", "received": {id: ["topic payload", ...]}} and
{"step": "done"}; on an exception {"step": "error", ...} and exit 1.
"""

import json
import ssl
import sys
import threading
import traceback

import paho.mqtt.client as mqtt

STEP = 5.0  # seconds any one acknowledgement or message may take


def emit(step, **fields):
    fields["step"] = step
    print(json.dumps(fields, sort_keys=True), flush=True)


class WSClient:
    """A paho client over WebSocket on its own network thread, with
    bounded blocking helpers."""

    def __init__(self, client_id, protocol, path):
        self.id = client_id
        self.c = mqtt.Client(client_id, protocol=protocol, transport="websockets")
        self.c.ws_set_options(path=path)
        self.cv = threading.Condition()
        self.connected = None
        self.subacked = False
        self.messages = []
        self.published = set()
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_message = self._on_message
        self.c.on_publish = self._on_publish

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        with self.cv:
            self.connected = rc
            self.cv.notify_all()

    def _on_subscribe(self, client, userdata, mid, granted, properties=None):
        with self.cv:
            self.subacked = True
            self.cv.notify_all()

    def _on_message(self, client, userdata, msg):
        with self.cv:
            self.messages.append("%s %s" % (msg.topic, msg.payload.decode("utf-8", "replace")))
            self.cv.notify_all()

    def _on_publish(self, client, userdata, mid):
        with self.cv:
            self.published.add(mid)
            self.cv.notify_all()

    def _wait(self, pred, what):
        with self.cv:
            if not self.cv.wait_for(pred, STEP):
                raise TimeoutError("%s: no %s within %.1fs" % (self.id, what, STEP))

    def connect(self, host, port):
        self.c.connect(host, port, 30)
        self.c.loop_start()
        self._wait(lambda: self.connected is not None, "CONNACK")
        if self.connected != 0:
            raise RuntimeError("%s: CONNACK %s" % (self.id, self.connected))

    def subscribe(self, topic):
        self.c.subscribe(topic, 1)
        self._wait(lambda: self.subacked, "SUBACK")

    def wait_message(self):
        with self.cv:
            self.cv.wait_for(lambda: self.messages, STEP)
            return list(self.messages)

    def publish(self, topic, payload):
        info = self.c.publish(topic, payload, 1)
        self._wait(lambda: info.mid in self.published, "PUBACK")

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def run(p):
    ws = WSClient("py-ws", mqtt.MQTTv311, p["path"])
    wss = WSClient("py-wss", mqtt.MQTTv5, p["path"])
    wss.c.tls_set(ca_certs=p["ca"], certfile=p["cert"], keyfile=p["key"], tls_version=ssl.PROTOCOL_TLS_CLIENT)
    ws.connect(p["host"], int(p["ws_port"]))
    wss.connect(p["host"], int(p["wss_port"]))
    for c in (ws, wss):
        c.subscribe("py/in")
    emit("subscribed")
    received = {c.id: c.wait_message() for c in (ws, wss)}
    emit("received", received=received)
    for c in (ws, wss):
        c.publish("py/out", "from " + c.id)
        c.close()
    emit("done")


if __name__ == "__main__":
    try:
        run(json.loads(sys.argv[1]))
    except Exception as e:  # report, then fail
        emit("error", error=repr(e), traceback=traceback.format_exc())
        sys.exit(1)
