"""A device provisioned through ztpd's local hub acting as Azure DPS, with
the unmodified Azure IoT device SDK (azure-iot-device 2.14).

    dps_device.py full     CA_PEM HOST ID_SCOPE GROUP_KEY OTHER_KEY REG_ID COUNT
    dps_device.py register CA_PEM HOST ID_SCOPE GROUP_KEY REG_ID
    dps_device.py twin     CA_PEM HOST ID_SCOPE GROUP_KEY DEVICE_ID KEY_NAME
    dps_device.py serve    CA_PEM HOST ID_SCOPE GROUP_KEY DEVICE_ID REPORTED_JSON
    dps_device.py answer   CA_PEM HOST ID_SCOPE GROUP_KEY DEVICE_ID...

The device key is derived from the group enrollment key as DPS does:
base64(HMAC-SHA256(base64decode(group key), registration id)). Prints one
JSON object per line for the Rust test:
  {"registered": {...}}     the first registration's result
  {"sent": N}               N messages acknowledged by the assigned hub
  {"reregistered": {...}}   a second registration's result
  {"forged": "..."}         what a key derived from OTHER_KEY got (an error)
  {"result": {...}} or {"error": "..."}   `register` mode
  `twin` mode: {"ready": true} once connected (direct methods are answered
  with status 201 and {name, got: payload}, except `silent`), {"desired":
  patch} for the first desired patch naming KEY_NAME, then after
  reconnecting {"twin": get_twin()}
  `serve` mode: reports REPORTED_JSON, then {"ready": true}; answers
  methods as `twin` does, printing {"method": {name, payload}} for each,
  and {"desired": patch} for each desired patch, until stdin closes
  `answer` mode: one client per DEVICE_ID, {"ready": DEVICE_ID} once each is
  connected; until stdin closes they answer every method with
  {name, got: payload, device} and the status the payload's `status` object
  gives their id (200 without one), except ids in the payload's `silent`
  list, which never answer
"""
import base64
import hashlib
import hmac
import json
import sys
import threading

from azure.iot.device import (
    IoTHubDeviceClient,
    Message,
    MethodResponse,
    ProvisioningDeviceClient,
)


def emit(obj):
    print(json.dumps(obj), flush=True)


def derive(group_key, registration_id):
    mac = hmac.new(base64.b64decode(group_key), registration_id.encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def register(ca, host, scope, key, reg_id, payload=None):
    client = ProvisioningDeviceClient.create_from_symmetric_key(
        provisioning_host=host,
        registration_id=reg_id,
        id_scope=scope,
        symmetric_key=key,
        server_verification_cert=ca,
    )
    if payload is not None:
        client.provisioning_payload = payload
    r = client.register()
    s = r.registration_state
    return {
        "status": r.status,
        "assigned_hub": s.assigned_hub if s else None,
        "device_id": s.device_id if s else None,
        "sub_status": s.sub_status if s else None,
    }


def answer_methods(client, seen=None):
    """Answer each direct method with 201 {name, got: payload}, except
    `silent` (never answered: the caller must time out)."""
    def on_method(req):
        if seen:
            seen(req)
        if req.name != "silent":
            answer = {"name": req.name, "got": req.payload}
            client.send_method_response(MethodResponse.create_from_method_request(req, 201, answer))

    client.on_method_request_received = on_method


def serve(ca, host, group_key, device_id, reported):
    client = IoTHubDeviceClient.create_from_symmetric_key(
        symmetric_key=derive(group_key, device_id), hostname=host, device_id=device_id,
        server_verification_cert=ca,
    )
    answer_methods(client, lambda req: emit({"method": {"name": req.name, "payload": req.payload}}))
    client.on_twin_desired_properties_patch_received = lambda patch: emit({"desired": patch})
    client.connect()
    client.patch_twin_reported_properties(reported)
    emit({"ready": True})
    sys.stdin.read()
    client.shutdown()


def answer(ca, host, group_key, device_ids):
    clients = []
    for device_id in device_ids:
        client = IoTHubDeviceClient.create_from_symmetric_key(
            symmetric_key=derive(group_key, device_id),
            hostname=host,
            device_id=device_id,
            server_verification_cert=ca,
        )

        def on_method(req, client=client, device_id=device_id):
            got = req.payload if isinstance(req.payload, dict) else {}
            if device_id in got.get("silent", []):
                return
            status = got.get("status", {}).get(device_id, 200)
            body = {"name": req.name, "got": req.payload, "device": device_id}
            client.send_method_response(MethodResponse.create_from_method_request(req, status, body))

        client.on_method_request_received = on_method
        client.connect()
        clients.append(client)
        emit({"ready": device_id})
    sys.stdin.read()
    for client in clients:
        client.shutdown()


def main():
    mode, ca_path, host, scope, group_key = sys.argv[1:6]
    with open(ca_path) as f:
        ca = f.read()
    if mode == "serve":
        serve(ca, host, group_key, sys.argv[6], json.loads(sys.argv[7]))
        return
    if mode == "twin":
        device_id, key_name = sys.argv[6], sys.argv[7]
        key = derive(group_key, device_id)
        got = threading.Event()

        def on_patch(patch):
            if key_name in patch and not got.is_set():
                emit({"desired": patch})
                got.set()

        client = IoTHubDeviceClient.create_from_symmetric_key(
            symmetric_key=key, hostname=host, device_id=device_id, server_verification_cert=ca
        )
        answer_methods(client)
        client.on_twin_desired_properties_patch_received = on_patch
        client.connect()
        emit({"ready": True})
        if not got.wait(60):
            sys.exit(3)
        client.shutdown()
        again = IoTHubDeviceClient.create_from_symmetric_key(
            symmetric_key=key, hostname=host, device_id=device_id, server_verification_cert=ca
        )
        again.connect()
        emit({"twin": again.get_twin()})
        again.shutdown()
        return
    if mode == "answer":
        answer(ca, host, group_key, sys.argv[6:])
        return
    if mode == "register":
        reg_id = sys.argv[6]
        try:
            emit({"result": register(ca, host, scope, derive(group_key, reg_id), reg_id)})
        except Exception as e:  # the SDK raises on refusal: report which
            emit({"error": type(e).__name__})
        return
    other_key, reg_id, count = sys.argv[6], sys.argv[7], int(sys.argv[8])
    key = derive(group_key, reg_id)
    first = register(ca, host, scope, key, reg_id, {"model": "t-100", "fw": "1.0"})
    emit({"registered": first})
    client = IoTHubDeviceClient.create_from_symmetric_key(
        symmetric_key=key,
        hostname=first["assigned_hub"],
        device_id=first["device_id"],
        server_verification_cert=ca,
    )
    client.connect()
    for i in range(count):
        reading = {
            "device_id": first["device_id"],
            "device_latitude": round(-37.0 + i * 0.001, 6),
            "device_longitude": round(-68.0 + i * 0.001, 6),
            "device_battery_level": 1.0,
            "signal_date": "2024-06-01T00:00:%02dZ" % i,
        }
        m = Message(json.dumps(reading))
        m.content_type = "application/json"
        m.content_encoding = "utf-8"
        client.send_message(m)
    emit({"sent": count})
    client.shutdown()
    emit({"reregistered": register(ca, host, scope, key, reg_id, {"model": "t-100", "fw": "1.1"})})
    try:
        register(ca, host, scope, derive(other_key, reg_id), reg_id)
        emit({"forged": "registered"})
    except Exception as e:
        emit({"forged": type(e).__name__})


if __name__ == "__main__":
    main()
