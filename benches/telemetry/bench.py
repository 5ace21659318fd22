#!/usr/bin/env python3
"""Helpers for run_bench.sh: payloads, the prototype's subscriber, the
insert_many ceiling, and waiting for a collection to reach a count."""
import json
import sys
import time

import pymongo


def reading(dev, n):
    return json.dumps({
        "device_id": dev,
        "device_name": 1000001 + int(dev.split("-")[-1]),
        "device_latitude": round(-37.36 + (n % 997) * 0.005, 6),
        "device_longitude": round(-68.22 + (n % 991) * 0.006, 6),
        "device_battery_level": round(max(0.0, 1.0 - (n // 10) * 0.001), 2),
        "signal_date": "2024-05-01 %02d:%02d:%02d.%06d" % (n // 3600000 % 24, n // 60000 % 60, n // 1000 % 60, n % 1000000),
    })


def payloads(out_dir, devices, per_device):
    for d in range(devices):
        dev = "bench-%d" % d
        with open("%s/%s.txt" % (out_dir, dev), "w") as f:
            for n in range(per_device):
                f.write(reading(dev, n) + "\n")


def wait_count(uri, db, coll, want, timeout):
    """Print the time the collection first holds `want` documents.

    Polls with estimated_document_count (a metadata count: ~2 ms on nx-27017
    at 20k documents), not count_documents, which scans (~380 ms there) and,
    polled every 20 ms, kept the server busy counting instead of inserting:
    that slowed every streaming path more as the collection grew. The exact
    count_documents runs once, after the time is taken, to prove zero loss.
    """
    c = pymongo.MongoClient(uri)[db][coll]
    end = time.time() + timeout
    n = 0
    while time.time() < end:
        n = c.estimated_document_count()
        if n >= want:
            t = time.time()
            exact = c.count_documents({})
            if exact != want:
                print("stored %d documents, expected exactly %d" % (exact, want), file=sys.stderr)
                sys.exit(1)
            print(t)
            return
        time.sleep(0.05)
    print("timeout: %d of %d stored" % (n, want), file=sys.stderr)
    sys.exit(1)


def prototype(mqtt_port, uri, db, coll, ready_file, client_id):
    """The prototype's way: paho subscriber, one insert_one per message.

    A persistent session (clean_session=False) under `client_id`, so that a
    restarted subscriber drains what the broker queued while it was away."""
    import paho.mqtt.client as mqtt
    from datetime import datetime
    col = pymongo.MongoClient(uri)[db][coll]

    def on_connect(client, userdata, flags, rc, props=None):
        client.subscribe("devices/+/messages/events/#", qos=1)

    def on_subscribe(client, userdata, mid, rcs, props=None):
        open(ready_file, "w").close()

    def on_message(client, userdata, msg):
        doc = json.loads(msg.payload)
        doc["signal_date"] = datetime.strptime(doc["signal_date"], "%Y-%m-%d %H:%M:%S.%f")
        col.insert_one(doc)

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    c.on_connect = on_connect
    c.on_subscribe = on_subscribe
    c.on_message = on_message
    c.connect("127.0.0.1", mqtt_port)
    c.loop_forever()


def ceiling(uri, db, coll, devices, per_device, batch):
    """Raw insert_many(ordered=False) from one client: the store's ceiling."""
    from datetime import datetime
    col = pymongo.MongoClient(uri)[db][coll]
    docs = []
    for d in range(devices):
        dev = "bench-%d" % d
        for n in range(per_device):
            doc = json.loads(reading(dev, n))
            doc["signal_date"] = datetime.strptime(doc["signal_date"], "%Y-%m-%d %H:%M:%S.%f")
            doc["_id"] = "%s:%d" % (dev, n)
            docs.append(doc)
    t0 = time.time()
    for i in range(0, len(docs), batch):
        col.insert_many(docs[i:i + batch], ordered=False)
    t1 = time.time()
    assert col.count_documents({}) == len(docs)
    print("%f %f" % (t0, t1))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "payloads":
        payloads(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "wait":
        wait_count(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6]))
    elif cmd == "prototype":
        prototype(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7])
    elif cmd == "ceiling":
        ceiling(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]))
    elif cmd == "now":
        print(time.time())
