"""SUBSCRIBE scenarios: subscription identifiers, No Local, Retain As
Published, Retain Handling, SUBACK and UNSUBACK reason codes.

Usage: /usr/bin/python3 subscribe.py HOST PORT SCENARIO [JSON]; see v5client.py.
"""

from v5client import emit, main


def sub_ids(env):
    """Overlapping subscriptions with and without identifiers; a
    resubscription replacing one; a retained message sent on subscribe."""
    s = env.connected("sid-sub")
    emit("suback.plus", codes=s.subscribe([("sid/+", 1)], sub_id=7))
    emit("suback.hash", codes=s.subscribe([("sid/#", 1)], sub_id=16384))  # three-byte varint
    emit("suback.exact", codes=s.subscribe([("sid/x", 1)]))  # no identifier
    p = env.connected("sid-pub")
    p.publish("sid/x", "all-three")
    p.publish("sid/y/z", "hash-only")
    s.wait_payload("hash-only")
    emit("resubscribe", codes=s.subscribe([("sid/+", 1)], sub_id=8))  # replaces 7 [MQTT-3.8.4-3]
    p.publish("sid/x", "replaced")
    p.publish("sidr/a", "retained", retain=True)
    s.subscribe([("sidr/#", 1)], sub_id=9)
    p.publish("sid/y/z", "barrier")
    s.wait_payload("barrier")
    emit("messages", messages=s.settle(0.3))


def no_local(env):
    """A subscribes with No Local, B without; both publish on the topic."""
    a = env.connected("nl-a")
    a.subscribe([("nl/t", 1, {"no_local": True})])
    b = env.connected("nl-b")
    b.subscribe([("nl/t", 1)])
    a.publish("nl/t", "from-a")
    b.publish("nl/t", "from-b")
    b.wait_payload("from-b")
    a.wait_payload("from-b")
    emit("a.messages", messages=a.settle(0.3))
    emit("b.messages", messages=b.received())


def retain_as_published(env):
    """One subscriber with Retain As Published, one without, then a late one
    that gets the retained message on subscribing."""
    yes = env.connected("rap-yes")
    yes.subscribe([("rap/t", 1, {"rap": True})])
    no = env.connected("rap-no")
    no.subscribe([("rap/t", 1)])
    pub = env.connected("rap-pub")
    pub.publish("rap/t", "retained", retain=True)
    pub.publish("rap/t", "plain")
    emit("yes.messages", messages=yes.wait_payload("plain"))
    emit("no.messages", messages=no.wait_payload("plain"))
    late = env.connected("rap-late")
    late.subscribe([("rap/t", 1)])
    pub.publish("rap/t", "barrier")
    emit("late.messages", messages=late.wait_payload("barrier"))


def retain_handling(env):
    """A retained message, then subscriptions with Retain Handling 0, 1 and
    2, each made twice on its own client, then a live message."""
    pub = env.connected("rh-pub")
    pub.publish("rh/t", "retained", retain=True)
    subs = {}
    for rh in (0, 1, 2):
        c = env.connected("rh-%d" % rh)
        codes = c.subscribe([("rh/t", 1, {"rh": rh})]) + c.subscribe([("rh/t", 1, {"rh": rh})])
        emit("rh%d.suback" % rh, codes=codes)
        subs[rh] = c
    pub.publish("rh/t", "live")
    for rh, c in subs.items():
        c.wait_payload("live")
        emit("rh%d.messages" % rh, messages=c.settle(0.1))


def suback_codes(env):
    """params: filters, a list of [filter, qos]; publish, topics; qos;
    expect. One SUBSCRIBE with all the filters; then a message at qos to
    every topic in publish, waiting for expect to arrive."""
    c = env.connected("sa")
    emit("suback", codes=c.subscribe([(f, q) for f, q in env.params["filters"]], unchecked=True))
    p = env.connected("sa-pub")
    for topic in env.params["publish"]:
        p.publish(topic, topic, qos=env.params["qos"])
    c.wait_messages(env.params["expect"])
    emit("messages", messages=c.settle(0.2))


def unsuback_codes(env):
    """Subscribe to one filter; unsubscribe from it, one never subscribed
    and itself again in one UNSUBSCRIBE; then publish to it."""
    c = env.connected("us")
    c.subscribe([("us/a", 1)])
    emit("unsuback", codes=c.unsubscribe(["us/a", "us/never", "us/a"]))
    p = env.connected("us-pub")
    p.publish("us/a", "after-unsubscribe")
    emit("messages", messages=c.settle(0.3))


def shared_no_local(env):
    """No Local on a shared subscription: a Protocol Error [MQTT-3.8.3-4]."""
    c = env.connected("snl")
    c.send_subscribe([("$share/g/snl/t", 1, {"no_local": True})])
    emit("disconnects", disconnects=c.wait_disconnect())


if __name__ == "__main__":
    main({
        "sub_ids": sub_ids,
        "no_local": no_local,
        "retain_as_published": retain_as_published,
        "retain_handling": retain_handling,
        "suback_codes": suback_codes,
        "unsuback_codes": unsuback_codes,
        "shared_no_local": shared_no_local,
    })
