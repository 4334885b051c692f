"""The scripted sequence of tests/tests/client_side_by_side.rs, run with the
Python SDK (GreengrassCoreIPCClientV2). The Rust test runs the same steps
through ggipc-client; both print one JSON line per step, in this form:

    {"step": NAME, "response": RESPONSE AS SENT ON THE WIRE}
    {"step": NAME, "error": ERROR CLASS NAME, "message": ITS MESSAGE}
    {"step": NAME, "event": {"topic": T, "json": V} or {"topic": T, "binary_b64": B}}

Keep the two in step: same names, same order, same arguments.
"""

import base64
import datetime
import json
import queue
import sys

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc import model

WAIT = 10.0
# A time after the broker's start, so that the update wins (§7.4.11).
TIMESTAMP = 4102444800.25


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def step(name, call):
    try:
        response = call()
    except Exception as exc:  # the Rust test compares type and message
        emit({"step": name, "error": type(exc).__name__,
              "message": getattr(exc, "message", None) or str(exc)})
        return
    emit({"step": name, "response": response._to_payload()})


def event_record(event):
    if event.json_message is not None:
        return {"topic": event.json_message.context.topic, "json": event.json_message.message}
    return {"topic": event.binary_message.context.topic,
            "binary_b64": base64.b64encode(event.binary_message.message).decode()}


def json_message(value):
    return model.PublishMessage(json_message=model.JsonMessage(message=value))


def binary_message(data):
    return model.PublishMessage(binary_message=model.BinaryMessage(message=data))


def main():
    client = GreengrassCoreIPCClientV2()

    # Member order as a Rust struct declares it, not sorted; non-ASCII text.
    step("publish_json", lambda: client.publish_to_topic(
        topic="side/json",
        publish_message=json_message({"zeta": "h\u00e9llo", "alpha": [1, 2.5, None, True],
                                      "nested": {"b": 1, "a": {"x": "y"}}})))
    step("publish_binary", lambda: client.publish_to_topic(
        topic="side/bin", publish_message=binary_message(b"\x00\x01hi\xff")))

    events = queue.Queue()
    response, operation = client.subscribe_to_topic(
        topic="side/sub", on_stream_event=lambda e: events.put(event_record(e)))
    emit({"step": "subscribe", "response": response._to_payload()})
    step("publish_to_subscription_json", lambda: client.publish_to_topic(
        topic="side/sub", publish_message=json_message({"n": 1})))
    emit({"step": "event_json", "event": events.get(timeout=WAIT)})
    step("publish_to_subscription_binary", lambda: client.publish_to_topic(
        topic="side/sub", publish_message=binary_message(b"bytes")))
    emit({"step": "event_binary", "event": events.get(timeout=WAIT)})
    operation.close().result(WAIT)

    step("get_configuration", lambda: client.get_configuration(key_path=["settings"]))
    step("update_configuration", lambda: client.update_configuration(
        key_path=["settings"],
        timestamp=datetime.datetime.fromtimestamp(TIMESTAMP, datetime.timezone.utc),
        value_to_merge={"mode": "slow", "speed": 4}))
    step("get_configuration_updated", lambda: client.get_configuration(
        component_name="com.example.Side", key_path=["settings", "speed"]))
    step("get_configuration_missing", lambda: client.get_configuration(key_path=["nope"]))
    step("list_components", lambda: client.list_components())
    step("get_component_details", lambda: client.get_component_details(
        component_name="com.example.Side"))
    step("get_component_details_missing", lambda: client.get_component_details(
        component_name="com.example.Missing"))
    step("update_state", lambda: client.update_state(state=model.ReportedLifecycleState.RUNNING))
    step("unauthorized", lambda: client.publish_to_topic(
        topic="denied/topic", publish_message=json_message({"x": 1})))
    step("invalid_arguments", lambda: client.publish_to_topic(
        topic="side/+", publish_message=binary_message(b"x")))
    step("publish_to_iot_core", lambda: client.publish_to_iot_core(
        topic_name="side/iot", qos=model.QOS.AT_LEAST_ONCE, payload=b"iot"))

    client.close()


if __name__ == "__main__":
    main()
