"""PUBLISH scenarios: properties passed through, request/response, topic
aliases from the client, and a responder for mosquitto_rr.

Usage: /usr/bin/python3 publish.py HOST PORT SCENARIO [JSON]; see v5client.py.
"""

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from v5client import emit, main


def passthrough(env):
    """params: properties (a PUBLISH property dict). One message per QoS,
    each with those properties, to a subscriber granted QoS 2."""
    sub = env.connected("pp-sub")
    emit("suback", codes=sub.subscribe([("pp/#", 2)]))
    pub = env.connected("pp-pub")
    for qos in (0, 1, 2):
        pub.publish("pp/q%d" % qos, "payload-%d" % qos, qos=qos, properties=env.params["properties"])
    emit("messages", messages=sub.wait_messages(3))


def request_response(env):
    """A requester asks for Response Information, builds its response topic
    from it, and sends a request that a responder answers on that topic with
    the same Correlation Data (MQTT 5 section 4.10)."""
    responder = env.connected("rr-responder")
    responder.subscribe([("rr/request", 1)])
    serve(responder, prefix=b"pong:")

    requester = env.client("rr-requester")
    ack = requester.connect(properties={"RequestResponseInformation": 1})
    emit("requester.connack", **ack)
    base = ack["properties"].get("ResponseInformation", "")
    reply = base + "rr-requester/reply"
    requester.subscribe([(reply, 1)])
    requester.publish("rr/request", "ping", qos=1,
                      properties={"ResponseTopic": reply, "CorrelationData": env.params["correlation"]})
    emit("requester.messages", messages=requester.wait_messages(1))
    emit("responder.messages", messages=responder.wait_messages(1))


def serve(client, prefix):
    """Answer each request on its Response Topic with prefix + payload and
    its Correlation Data; requests are still recorded as messages."""
    record = client.c.on_message

    def on_request(c, userdata, msg):
        record(c, userdata, msg)
        req = msg.properties
        if not hasattr(req, "ResponseTopic"):
            return
        props = Properties(PacketTypes.PUBLISH)
        if hasattr(req, "CorrelationData"):
            props.CorrelationData = req.CorrelationData
        c.publish(req.ResponseTopic, prefix + msg.payload, qos=msg.qos, properties=props)

    client.c.on_message = on_request


def responder(env):
    """params: topic, count, timeout. Serve count requests (for mosquitto_rr)
    and report them."""
    r = env.connected("rr-responder")
    emit("suback", codes=r.subscribe([(env.params["topic"], 1)]))
    serve(r, prefix=b"pong:")
    emit("requests", messages=r.wait_messages(env.params["count"], timeout=env.params["timeout"]))
    r.disconnect()


def topic_alias(env):
    """params: over (an alias above the broker's Topic Alias Maximum).
    Aliases set, used, remapped; then an alias out of range, then an alias
    the new connection never set."""
    sub = env.connected("ta-sub")
    sub.subscribe([("ta/#", 1)])
    pub = env.connected("ta-pub")
    emit("pub.connack", **pub.connack)
    steps = [
        ("ta/one", "1", 1),  # sets alias 1
        ("", "2", 1),  # uses it
        ("ta/two", "3", 2),
        ("", "4", 2),
        ("ta/three", "5", 1),  # remaps alias 1
        ("", "6", 1),
        ("ta/plain", "7", None),  # no alias: mappings unchanged
        ("", "8", 2),
    ]
    for topic, payload, alias in steps:
        props = {"TopicAlias": alias} if alias else None
        pub.publish(topic, payload, qos=1, properties=props)
    emit("messages", messages=sub.wait_messages(len(steps)))

    pub.send_publish("ta/over", "9", qos=0, properties={"TopicAlias": env.params["over"]})
    emit("over.disconnects", disconnects=pub.wait_disconnect())

    # A new connection starts with no aliases [MQTT-3.3.2-7].
    again = env.connected("ta-pub")
    again.send_publish("", "10", qos=0, properties={"TopicAlias": 1})
    emit("unset.disconnects", disconnects=again.wait_disconnect())
    emit("after", messages=sub.settle(0.2))


if __name__ == "__main__":
    main({
        "passthrough": passthrough,
        "request_response": request_response,
        "responder": responder,
        "topic_alias": topic_alias,
    })
