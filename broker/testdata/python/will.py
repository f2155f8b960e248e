"""Will scenarios: Will Delay Interval, DISCONNECT with 0x04, and a
session taken over.

Usage: /usr/bin/python3 will.py HOST PORT SCENARIO [JSON]; see v5client.py.
"""

import time

from v5client import elapsed, emit, main


def watcher(env):
    w = env.connected("will-watch")
    w.subscribe([("will/#", 1)])
    return w


def will_delay(env):
    """Three clients with wills close abnormally at once: a reconnects
    within its Will Delay Interval (no will); b's delay runs out; c's
    session expires before its delay does (will at session end)."""
    w = watcher(env)
    session = {"SessionExpiryInterval": 10}
    a = env.connected("wd-a", properties=session,
                      will={"topic": "will/a", "payload": "a", "qos": 1, "properties": {"WillDelayInterval": 2}})
    b = env.connected("wd-b", properties=session,
                      will={"topic": "will/b", "payload": "b", "qos": 1,
                            "properties": {"WillDelayInterval": 2, "ContentType": "text/plain"}})
    c = env.connected("wd-c", properties={"SessionExpiryInterval": 1},
                      will={"topic": "will/c", "payload": "c", "qos": 1, "properties": {"WillDelayInterval": 30}})
    emit("dropped", t=elapsed())
    for x in (a, b, c):
        x.drop()
    time.sleep(0.3)
    again = env.client("wd-a")
    emit("a.reconnect", **again.connect(clean_start=False, properties=session))
    w.wait_messages(2, timeout=4)
    emit("messages", messages=w.settle(0.5))


def disconnect_with_will(env):
    """d sends DISCONNECT 0x04 (publish the will), e DISCONNECT 0x00 (don't),
    f closes the connection without DISCONNECT."""
    w = watcher(env)
    props = env.params["properties"]
    d = env.connected("dw-d", will={"topic": "will/d", "payload": "d", "qos": 1, "properties": props})
    e = env.connected("dw-e", will={"topic": "will/e", "payload": "e", "qos": 1})
    f = env.connected("dw-f", will={"topic": "will/f", "payload": "f", "qos": 1})
    d.disconnect(0x04)
    e.disconnect(0x00)
    f.drop()
    w.wait_messages(2)
    emit("messages", messages=w.settle(0.5))


def takeover(env):
    """params: cases, a list of {id, will_delay, clean_start}. For each, a
    connection with a will is taken over by a second one with that Clean
    Start; then a message on the first's subscription."""
    w = watcher(env)
    pub = env.connected("to-pub")
    session = {"SessionExpiryInterval": 60}
    for case in env.params["cases"]:
        cid = case["id"]
        will = {"topic": "will/" + cid, "payload": cid, "qos": 1}
        if case["will_delay"]:
            will["properties"] = {"WillDelayInterval": case["will_delay"]}
        first = env.connected(cid, properties=session, will=will)
        first.subscribe([("to/" + cid, 1)])
        second = env.client(cid)
        emit(cid + ".connack", **second.connect(clean_start=case["clean_start"], properties=session))
        emit(cid + ".disconnects", disconnects=first.wait_disconnect())
        pub.publish("to/" + cid, "after-takeover")
        emit(cid + ".messages", messages=second.settle(0.1) if case["clean_start"] else second.wait_messages(1))
        emit(cid + ".first.messages", messages=first.received())
    emit("watch.messages", messages=w.settle(0.5))


if __name__ == "__main__":
    main({"will_delay": will_delay, "disconnect_with_will": disconnect_with_will, "takeover": takeover})
