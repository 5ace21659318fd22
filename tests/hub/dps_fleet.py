"""Many devices registering at once through ztpd's DPS, each in a thread of
this one process, with the unmodified Azure IoT device SDK (2.14).

    dps_fleet.py fleet CA_PEM ID_SCOPE GROUP_KEY PREFIX COUNT HOST...
    dps_fleet.py burst CA_PEM ID_SCOPE GROUP_KEY PREFIX COUNT HOST

Device i has registration id PREFIX-iii and a key derived from GROUP_KEY.
`fleet`: it registers at HOST[i % n], connects an IoTHubDeviceClient to the
hub it was assigned and sends one message there, then registers again at
HOST[(i + 1) % n]. `burst`: it registers once at HOST.
One JSON line per device: {"id", "first": {...}} plus "sent" and "second"
(`fleet`), or {"id", "error": "..."} for a device whose step raised.
"""
import json
import sys
from concurrent.futures import ThreadPoolExecutor

from azure.iot.device import IoTHubDeviceClient, Message

from dps_device import derive, register

# Threads at once: each SDK client runs threads of its own.
PARALLEL = 25


def main():
    mode, ca_path, scope, group_key, prefix, count = sys.argv[1:7]
    hosts = sys.argv[7:]
    with open(ca_path) as f:
        ca = f.read()

    def device(i):
        reg_id = "%s-%03d" % (prefix, i)
        key = derive(group_key, reg_id)
        out = {"id": reg_id}
        try:
            out["first"] = register(ca, hosts[i % len(hosts)], scope, key, reg_id)
            if mode == "burst":
                return out
            client = IoTHubDeviceClient.create_from_symmetric_key(
                symmetric_key=key,
                hostname=out["first"]["assigned_hub"],
                device_id=reg_id,
                server_verification_cert=ca,
            )
            client.connect()
            m = Message(json.dumps({
                "device_id": reg_id,
                "device_latitude": -37.0,
                "device_longitude": -68.0,
                "device_battery_level": 1.0,
                "signal_date": "2024-06-01T00:00:00Z",
            }))
            m.content_type = "application/json"
            m.content_encoding = "utf-8"
            client.send_message(m)
            client.shutdown()
            out["sent"] = True
            out["second"] = register(ca, hosts[(i + 1) % len(hosts)], scope, key, reg_id)
        except Exception as e:  # reported per device; the test decides
            out["error"] = "%s: %s" % (type(e).__name__, e)
        return out

    with ThreadPoolExecutor(PARALLEL) as pool:
        for r in pool.map(device, range(int(count))):
            print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
