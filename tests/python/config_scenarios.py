"""Configuration scenarios run with the real AWS IoT Device SDK (awsiotsdk).

Each invocation is one component: the socket path and token come from the
environment, as the nucleus gives them. Results are printed as JSON lines for
the Rust tests to check.

    ops JSON_LIST      runs each {"op": OP, "args": {...}} in order, one line each
                       OP: get | update | watch | validate | report
    watch [--component C] [--key-path JSON] --until KEY [--timeout S]
                       prints {"event": "subscribed"}, then every event until one
                       whose keyPath joined with "/" is KEY, then {"event": "done"}

For update, "timestamp" is float seconds since the epoch or "now"; leave it
out to send none. watch and validate in ops subscribe, report the outcome and
close the stream.
"""

import argparse
import datetime
import json
import sys
import threading
import time

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc import model


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def error_record(exc):
    return {"error": type(exc).__name__, "message": getattr(exc, "message", None) or str(exc)}


def timestamp(value):
    if value == "now":
        return datetime.datetime.now(datetime.timezone.utc)
    return datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)


def event_record(event):
    e = event.configuration_update_event
    return {"componentName": e.component_name, "keyPath": e.key_path}


def run_op(client, name, args):
    if name == "get":
        r = client.get_configuration(**args)
        return {"componentName": r.component_name, "value": r.value}
    if name == "update":
        if "timestamp" in args:
            args["timestamp"] = timestamp(args["timestamp"])
        client.update_configuration(**args)
        return {}
    if name == "watch":
        events = []
        _, op = client.subscribe_to_configuration_update(
            on_stream_event=lambda e: events.append(event_record(e)), **args)
        op.close()
        return {"events": events}
    if name == "validate":
        events = []
        closed = threading.Event()
        _, op = client.subscribe_to_validate_configuration_updates(
            on_stream_event=lambda e: events.append(repr(e)), on_stream_closed=closed.set)
        # No deployment asks for validation: the stream stays open and quiet.
        time.sleep(args.get("wait", 0.3))
        record = {"events": events, "closed_by_broker": closed.is_set()}
        op.close()
        return record
    if name == "report":
        client.send_configuration_validity_report(
            configuration_validity_report=model.ConfigurationValidityReport(
                status=args["status"], deployment_id=args["deployment_id"]))
        return {}
    raise ValueError("unknown op " + name)


def ops(args):
    client = GreengrassCoreIPCClientV2()
    for spec in json.loads(args.spec):
        name = spec["op"]
        try:
            record = run_op(client, name, dict(spec.get("args", {})))
            record.update({"op": name, "ok": True})
        except Exception as exc:  # the test checks the error's type and text
            record = error_record(exc)
            record["op"] = name
        emit(record)
    client.close()


def watch(args):
    client = GreengrassCoreIPCClientV2()
    received = []
    done = threading.Event()

    def on_event(event):
        record = event_record(event)
        received.append(record)
        if "/".join(record["keyPath"]) == args.until:
            done.set()

    kwargs = {"key_path": json.loads(args.key_path)}
    if args.component:
        kwargs["component_name"] = args.component
    _, operation = client.subscribe_to_configuration_update(on_stream_event=on_event, **kwargs)
    emit({"event": "subscribed"})
    done.wait(args.timeout)
    for record in received:
        emit(record)
    emit({"event": "done", "reached_until": done.is_set()})
    operation.close()
    client.close()


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("ops")
    p.add_argument("spec")
    p.set_defaults(func=ops)
    p = sub.add_parser("watch")
    p.add_argument("--component")
    p.add_argument("--key-path", default="[]")
    p.add_argument("--until", required=True)
    p.add_argument("--timeout", type=float, default=20)
    p.set_defaults(func=watch)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
