"""A device on the Azure IoT device SDK (azure-iot-device 2.14), unmodified,
against ztpd's local hub: what the prototype's publisher did, plus twins.

    azure_device.py CREDENTIAL_JSON CA_PEM COUNT WAIT_SECONDS

Uses only the credential file's CONNECTION_STR_PUB and the hub's CA. Prints
one JSON object per line on stdout, for the Rust test to read:
  {"sent": N}                      after COUNT messages were acknowledged
  {"twin": {...}}                  get_twin()
  {"reported": true}               patch_twin_reported_properties() returned
  {"ready": true}                  now waiting for devicebound and desired
  {"devicebound": {...}}           each cloud-to-device message (JSON body)
  {"desired": {...}}               each desired-properties patch
  {"done": true}                   both seen (exit 0), or exit 3 at WAIT_SECONDS
"""
import json
import sys
import threading
import time
from datetime import datetime, timezone

from azure.iot.device import IoTHubDeviceClient, Message


def emit(obj):
    print(json.dumps(obj), flush=True)


def main():
    cred_path, ca_path, count, wait = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    with open(cred_path) as f:
        cred = json.load(f)
    with open(ca_path) as f:
        ca = f.read()
    client = IoTHubDeviceClient.create_from_connection_string(
        cred["CONNECTION_STR_PUB"], server_verification_cert=ca
    )
    seen = {"devicebound": threading.Event(), "desired": threading.Event()}

    def on_message(msg):
        emit({"devicebound": json.loads(msg.data)})
        seen["devicebound"].set()

    def on_desired(patch):
        emit({"desired": patch})
        seen["desired"].set()

    client.on_message_received = on_message
    client.on_twin_desired_properties_patch_received = on_desired
    client.connect()

    device_id = cred["device_id"]
    for n in range(count):
        reading = {
            "device_id": device_id,
            "device_name": cred["device_name"],
            "device_latitude": round(-37.0 + n * 0.001, 6),
            "device_longitude": round(-68.0 + n * 0.001, 6),
            "device_battery_level": 1.0,
            "signal_date": datetime(2024, 6, 1, 0, 0, 0, n, tzinfo=timezone.utc)
            .isoformat()
            .replace("+00:00", "Z"),
        }
        m = Message(json.dumps(reading))
        m.content_type = "application/json"
        m.content_encoding = "utf-8"
        client.send_message(m)  # returns once the hub acknowledged it
    emit({"sent": count})

    emit({"twin": client.get_twin()})
    client.patch_twin_reported_properties({"firmware": "2.14-sdk", "sensor": {"ok": True}})
    emit({"reported": True})
    emit({"ready": True})

    deadline = time.monotonic() + wait
    for ev in seen.values():
        if not ev.wait(max(0.0, deadline - time.monotonic())):
            client.shutdown()
            sys.exit(3)
    emit({"done": True})
    client.shutdown()


if __name__ == "__main__":
    main()
