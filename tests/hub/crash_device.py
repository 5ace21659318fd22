"""A device on the unmodified Azure IoT device SDK (azure-iot-device 2.14)
sending COUNT readings at QoS 1 through a hub that the test kills (-9) and
restarts meanwhile, for tests/routing_sdk.rs. A send the SDK gives up on
(it raised) is sent again, as a device would; {"error": ...} says so.

    crash_device.py CREDENTIAL_JSON CA_PEM COUNT

send_message returns only once the hub acknowledged the message; across the
restart the SDK reconnects and sends the unacknowledged one again. Each
message carries the custom property seq=<n>. Prints {"acked": n} after each
acknowledgement and {"sent": COUNT} at the end.
"""
import json
import sys
import time
from datetime import datetime, timezone

from azure.iot.device import IoTHubDeviceClient, Message


def emit(obj):
    print(json.dumps(obj), flush=True)


def main():
    cred_path, ca_path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(cred_path) as f:
        cred = json.load(f)
    with open(ca_path) as f:
        ca = f.read()
    client = IoTHubDeviceClient.create_from_connection_string(
        cred["CONNECTION_STR_PUB"], server_verification_cert=ca
    )
    client.connect()
    for n in range(count):
        body = json.dumps(
            {
                "device_id": cred["device_id"],
                "device_name": cred["device_name"],
                "device_latitude": -37.0,
                "device_longitude": -68.0,
                "device_battery_level": 0.5,
                "signal_date": datetime(2024, 6, 1, 0, n // 60, n % 60, n, tzinfo=timezone.utc)
                .isoformat()
                .replace("+00:00", "Z"),
            }
        )
        for attempt in range(5):
            m = Message(body, content_type="application/json", content_encoding="utf-8")
            m.custom_properties = {"seq": str(n)}
            try:
                client.send_message(m)
                break
            except Exception as e:  # noqa: BLE001 - any SDK error: say it, send again
                # The SDK gives up on a send when its reconnect meets the
                # restarting hub at a bad moment; a device sends again. The
                # test still counts each message exactly once.
                emit({"error": f"{type(e).__name__}: {e}", "seq": n, "attempt": attempt})
                time.sleep(1)
        else:
            sys.exit(f"message {n} not acknowledged after 5 attempts")
        emit({"acked": n})
    emit({"sent": count})
    client.shutdown()


if __name__ == "__main__":
    main()
