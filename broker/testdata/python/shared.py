"""Shared subscription scenario.

Usage: /usr/bin/python3 shared.py HOST PORT SCENARIO [JSON]; see v5client.py.
"""

import time

from v5client import STEP, emit, main


def round_robin(env):
    """params: members, count. A retained message first; then members join
    $share/g/sh/t, an observer subscribes to sh/t, and count messages are
    published."""
    pub = env.connected("sh-pub")
    pub.publish("sh/t", "retained", retain=True)
    members = []
    for i in range(env.params["members"]):
        m = env.connected("sh-m%d" % i)
        emit("member%d.suback" % i, codes=m.subscribe([("$share/g/sh/t", 1)]))
        members.append(m)
    obs = env.connected("sh-obs")
    obs.subscribe([("sh/t", 1)])
    count = env.params["count"]
    for i in range(count):
        pub.publish("sh/t", str(i), qos=1)
    obs.wait_messages(count + 1)
    deadline = time.monotonic() + STEP
    while sum(len(m.received()) for m in members) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    for i, m in enumerate(members):
        emit("member%d.messages" % i, messages=m.received())
    emit("observer.messages", messages=obs.received())


if __name__ == "__main__":
    main({"round_robin": round_robin})
