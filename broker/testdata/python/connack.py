"""CONNECT/CONNACK scenarios: the properties a CONNACK carries, and a
broker-assigned client identifier naming a session.

Usage: /usr/bin/python3 connack.py HOST PORT SCENARIO [JSON]; see v5client.py.
"""

from v5client import emit, main


def connack(env):
    """params: connects, a list of {label, id, keepalive, properties}. Each
    connects, reports its CONNACK and disconnects."""
    for spec in env.params["connects"]:
        c = env.client(spec.get("id", ""))
        ack = c.connect(keepalive=spec.get("keepalive", 30), properties=spec.get("properties"))
        emit(spec["label"], **ack)
        c.disconnect()


def assigned_id(env):
    """An empty client id gets one assigned [MQTT-3.2.2-16]; reconnecting
    with it resumes the session it names."""
    c = env.client("")
    ack = c.connect(properties={"SessionExpiryInterval": 60})
    emit("first.connack", **ack)
    c.subscribe([("aid/t", 1)])
    c.disconnect()
    assigned = ack["properties"].get("AssignedClientIdentifier", "")
    if not assigned:
        return
    again = env.client(assigned)
    emit("resume.connack", **again.connect(clean_start=False, properties={"SessionExpiryInterval": 60}))
    p = env.connected("aid-pub")
    p.publish("aid/t", "still-subscribed")
    emit("resume.messages", messages=again.wait_messages(1))


if __name__ == "__main__":
    main({"connack": connack, "assigned_id": assigned_id})
