"""Two numbers of the local hub that the throughput bench does not give:

1. PUBACK latency with one message in flight (a device that sends one
   message at a time must not wait for a batch to fill): p50/p99/max over
   N sequential QoS 1 publishes (paho-mqtt, from .venv-test);
2. idle device connections per GB: RSS of `ztpd run` before and after
   opening C authenticated connections that then stay idle (asyncio).

    python3 benches/broker/hub_latency_idle.py ROOT PLAIN_PORT PID [N] [C]

ROOT: the daemon's root (for state/hub.key), PID: its process id.
"""
import asyncio
import base64
import hashlib
import hmac
import statistics
import struct
import sys
import time
import urllib.parse

import paho.mqtt.client as mqtt


def sas(key: bytes, dev: str) -> str:
    dkey = hmac.new(key, dev.encode(), hashlib.sha256).digest()
    sr = urllib.parse.quote(f"localhost/devices/{dev}", safe="")
    se = int(time.time()) + 3600
    sig = base64.b64encode(hmac.new(dkey, f"{sr}\n{se}".encode(), hashlib.sha256).digest()).decode()
    return f"SharedAccessSignature sr={sr}&sig={urllib.parse.quote(sig, safe='')}&se={se}"


def rss_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def latency(key: bytes, port: int, n: int):
    dev = "lat-dev-1"
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=dev, protocol=mqtt.MQTTv311)
    c.username_pw_set(f"localhost/{dev}/?api-version=2021-04-12", sas(key, dev))
    c.connect("127.0.0.1", port)
    c.loop_start()
    times = []
    for i in range(n):
        body = (
            f'{{"device_id":"{dev}","device_name":1,"device_latitude":-35.0,"device_longitude":-65.0,'
            f'"device_battery_level":0.5,"signal_date":"2024-05-01T00:00:00.{i:06d}Z"}}'
        )
        t0 = time.perf_counter()
        c.publish(f"devices/{dev}/messages/events/", body, qos=1).wait_for_publish()
        times.append((time.perf_counter() - t0) * 1000)
    c.loop_stop()
    c.disconnect()
    times.sort()
    print(
        f"PUBACK latency, one in flight, {n} messages: p50 {statistics.median(times):.2f} ms, "
        f"p99 {times[int(len(times) * 0.99) - 1]:.2f} ms, max {times[-1]:.2f} ms"
    )


def mqtt_str(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def connect_packet(dev: str, password: str) -> bytes:
    # Bench client only: the hub itself encodes with rumqttc's codec.
    vh = mqtt_str("MQTT") + bytes([4, 0xC2]) + struct.pack(">H", 0)  # user+password+clean, no keep-alive
    pl = mqtt_str(dev) + mqtt_str(f"localhost/{dev}/?api-version=2021-04-12") + mqtt_str(password)
    body = vh + pl
    n, rl = len(body), b""
    while True:
        d, n = n % 128, n // 128
        rl += bytes([d | (0x80 if n else 0)])
        if not n:
            break
    return bytes([0x10]) + rl + body


async def idle(key: bytes, port: int, pid: int, count: int):
    before = rss_kib(pid)
    conns = []
    sem = asyncio.Semaphore(200)

    async def one(i):
        dev = f"idle-{i:05d}"
        async with sem:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(connect_packet(dev, sas(key, dev)))
            await w.drain()
            ack = await r.readexactly(4)
            assert ack[3] == 0, f"{dev} refused: {ack!r}"
            conns.append((r, w))

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    took = time.perf_counter() - t0
    await asyncio.sleep(2)
    after = rss_kib(pid)
    per = (after - before) / count
    print(
        f"{count} idle connections in {took:.1f} s: ztpd RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB, "
        f"{per:.1f} KiB each, {1024 * 1024 / max(per, 0.001):.0f} connections per GiB"
    )
    for _, w in conns:
        w.close()


def main():
    root, port, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 300
    count = int(sys.argv[5]) if len(sys.argv) > 5 else 10000
    key = base64.b64decode(open(f"{root}/state/hub.key").read().strip())
    latency(key, port, n)
    asyncio.run(idle(key, port, pid, count))


if __name__ == "__main__":
    main()
