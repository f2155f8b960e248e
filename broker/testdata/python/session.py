"""Session and message expiry scenarios.

Usage: /usr/bin/python3 session.py HOST PORT SCENARIO [JSON]; see v5client.py.
"""

import time

from v5client import CLOSE_GRACE, emit, main


def session_expiry(env):
    """params: expiry (seconds), wait (seconds, longer than expiry plus the
    broker's expiry sweep). Resume within the Session Expiry Interval, then
    after it; then a session ended by DISCONNECT's Session Expiry Interval 0."""
    expiry = {"SessionExpiryInterval": env.params["expiry"]}
    first = env.connected("se", properties=expiry)
    emit("first.connack", **first.connack)
    first.subscribe([("se/t", 1)])
    first.disconnect()
    pub = env.connected("se-pub")
    pub.publish("se/t", "while-away", qos=1)

    resumed = env.client("se")
    emit("resume.connack", **resumed.connect(clean_start=False, properties=expiry))
    emit("resume.messages", messages=resumed.wait_messages(1))
    resumed.disconnect()

    time.sleep(env.params["wait"])
    late = env.client("se")
    emit("expired.connack", **late.connect(clean_start=False, properties=expiry))
    pub.publish("se/t", "after-expiry", qos=1)
    emit("expired.messages", messages=late.settle(0.3))
    late.disconnect()

    # DISCONNECT may shorten the interval; 0 ends the session now
    # (MQTT 5 section 3.14.2.2.2).
    short = env.connected("se2", properties={"SessionExpiryInterval": 60})
    short.subscribe([("se2/t", 1)])
    short.disconnect(properties={"SessionExpiryInterval": 0})
    time.sleep(CLOSE_GRACE)
    back = env.client("se2")
    emit("ended.connack", **back.connect(clean_start=False, properties={"SessionExpiryInterval": 60}))


def message_expiry(env):
    """params: wait (seconds). Expiry online, in an offline session's queue,
    and on retained messages."""
    pub = env.connected("me-pub")
    sub = env.connected("me-sub")
    sub.subscribe([("me/online", 1)])
    pub.publish("me/online", "online", properties={"MessageExpiryInterval": 60})
    emit("online.messages", messages=sub.wait_messages(1))

    off = env.connected("me-off", properties={"SessionExpiryInterval": 60})
    off.subscribe([("me/off", 1)])
    off.disconnect()
    time.sleep(CLOSE_GRACE)  # else "short" may go out to the closing connection, in flight
    pub.publish("me/off", "short", properties={"MessageExpiryInterval": 1})
    pub.publish("me/off", "long", properties={"MessageExpiryInterval": 60})
    pub.publish("me/off", "forever")
    pub.publish("me/retained/short", "short", retain=True, properties={"MessageExpiryInterval": 1})
    pub.publish("me/retained/long", "long", retain=True, properties={"MessageExpiryInterval": 60})
    time.sleep(env.params["wait"])

    back = env.client("me-off")
    emit("offline.connack", **back.connect(clean_start=False, properties={"SessionExpiryInterval": 60}))
    back.wait_messages(2)
    emit("offline.messages", messages=back.settle(0.3))

    late = env.connected("me-late")
    late.subscribe([("me/retained/#", 1)])
    pub.publish("me/retained/barrier", "barrier")
    emit("retained.messages", messages=late.wait_payload("barrier"))


if __name__ == "__main__":
    main({"session_expiry": session_expiry, "message_expiry": message_expiry})
