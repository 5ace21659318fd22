"""A device on the unmodified Azure IoT device SDK (azure-iot-device 2.14)
sending messages that routes tell apart (SPEC 14), for tests/routing_sdk.rs.

    routed_device.py CREDENTIAL_JSON CA_PEM ROUNDS RUN

RUN (0, 1, ...) is the hour of the readings' signal dates, so a second run
sends new readings rather than resending the first run's.

Each round sends four messages (the custom property `kind` names which; the
body is a prototype reading, which allows no other field), every one
acknowledged by the hub before the next (send_message returns after the
PUBACK):
  low     battery 0.1, content type application/json + utf-8   ($body route)
  alarm   battery 0.9, json + utf-8, custom property alarm=high (property route)
  bare    battery 0.1, NO content type or encoding ($body must not be read)
  normal  battery 0.9, json + utf-8, no properties               (fallback)
then patches a reported property (a twin change event) and disconnects (a
connection state event). Prints JSON lines: {"sent": N}, {"reported": true},
{"done": true}.
"""
import json
import sys
from datetime import datetime, timezone

from azure.iot.device import IoTHubDeviceClient, Message


def emit(obj):
    print(json.dumps(obj), flush=True)


def main():
    cred_path, ca_path, rounds, run = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with open(cred_path) as f:
        cred = json.load(f)
    with open(ca_path) as f:
        ca = f.read()
    client = IoTHubDeviceClient.create_from_connection_string(
        cred["CONNECTION_STR_PUB"], server_verification_cert=ca
    )
    client.connect()
    n = 0

    def reading(battery):
        nonlocal n
        n += 1
        return json.dumps(
            {
                "device_id": cred["device_id"],
                "device_name": cred["device_name"],
                "device_latitude": -37.0,
                "device_longitude": -68.0,
                "device_battery_level": battery,
                "signal_date": datetime(2024, 6, 1, run, 0, n % 60, n, tzinfo=timezone.utc)
                .isoformat()
                .replace("+00:00", "Z"),
            }
        )

    for _ in range(rounds):
        low = Message(reading(0.1), content_type="application/json", content_encoding="utf-8")
        low.custom_properties = {"kind": "low"}
        client.send_message(low)
        alarm = Message(reading(0.9), content_type="application/json", content_encoding="utf-8")
        alarm.custom_properties = {"alarm": "high", "kind": "alarm"}
        client.send_message(alarm)
        bare = Message(reading(0.1))
        bare.custom_properties = {"kind": "bare"}
        client.send_message(bare)
        normal = Message(reading(0.9), content_type="application/json", content_encoding="utf-8")
        normal.custom_properties = {"kind": "normal"}
        client.send_message(normal)
    emit({"sent": n})
    client.patch_twin_reported_properties({"firmware": "routed-1"})
    emit({"reported": True})
    client.shutdown()
    emit({"done": True})


if __name__ == "__main__":
    main()
