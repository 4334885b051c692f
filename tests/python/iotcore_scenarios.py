"""IoT Core scenarios run with the real AWS IoT Device SDK (awsiotsdk).

The socket path and token come from the environment, as the nucleus gives
them. Results are printed as JSON lines for the Rust tests to check.

    publish TOPIC PAYLOAD [--qos Q] [--count N] [--retain] [--content-type T]
            [--user-property K=V]... [--expiry S] [--correlation-data D]
            [--response-topic T] [--payload-format 0|1] [--timed]
        publishes N times (PAYLOAD, or PAYLOAD-<i> when N > 1); --timed adds
        the seconds the answers took
    try_publish TOPIC [--size BYTES] [--qos Q]
        one publish of BYTES bytes; prints {"ok": true} or the error
    subscribe FILTER COUNT [--qos Q] [--timeout S]
        prints {"event": "subscribed"} after the response, then the
        messages received (up to COUNT or the timeout) and {"event": "done"}
    try_subscribe FILTER [--qos Q]
        prints {"ok": true} or the error
    status COUNT [--timeout S]
        SubscribeToIoTCoreConnectionStatus: prints each event's status
"""

import argparse
import concurrent.futures
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


def client():
    # One worker keeps callbacks in delivery order.
    return GreengrassCoreIPCClientV2(executor=concurrent.futures.ThreadPoolExecutor(max_workers=1))


def publish(args):
    c = client()
    started = time.monotonic()
    for i in range(args.count):
        payload = args.payload if args.count == 1 else f"{args.payload}-{i}"
        try:
            c.publish_to_iot_core(
                topic_name=args.topic, qos=args.qos, payload=payload.encode(),
                retain=args.retain, content_type=args.content_type,
                user_properties=[model.UserProperty(key=k, value=v)
                                 for k, v in (p.split("=", 1) for p in args.user_property)] or None,
                message_expiry_interval_seconds=args.expiry,
                correlation_data=args.correlation_data.encode() if args.correlation_data else None,
                response_topic=args.response_topic,
                payload_format=args.payload_format)
        except Exception as e:  # noqa: BLE001 - every failure is a result here
            emit(error_record(e))
            c.close()
            return
    record = {"ok": True, "count": args.count}
    if args.timed:
        # The answers' time alone: interpreter start-up on a busy machine
        # is no part of what a test measures.
        record["seconds"] = time.monotonic() - started
    emit(record)
    c.close()


def try_publish(args):
    c = client()
    try:
        c.publish_to_iot_core(topic_name=args.topic, qos=args.qos, payload=b"x" * args.size)
        emit({"ok": True})
    except Exception as e:  # noqa: BLE001
        emit(error_record(e))
    c.close()


def subscribe(args):
    c = client()
    received = []
    done = threading.Event()

    def on_event(event):
        m = event.message
        received.append({"topic": m.topic_name, "payload": m.payload.decode("utf-8", "replace"),
                         "retain": m.retain, "content_type": m.content_type})
        if len(received) >= args.count:
            done.set()

    def on_error(e):
        received.append({"stream_error": error_record(e)})
        done.set()
        return True

    try:
        _, op = c.subscribe_to_iot_core(topic_name=args.filter, qos=args.qos,
                                        on_stream_event=on_event, on_stream_error=on_error)
    except Exception as e:  # noqa: BLE001
        emit(error_record(e))
        c.close()
        return
    emit({"event": "subscribed"})
    done.wait(args.timeout)
    for r in list(received):
        emit(r)
    emit({"event": "done", "count": len(received)})
    op.close()
    c.close()


def try_subscribe(args):
    c = client()
    try:
        _, op = c.subscribe_to_iot_core(topic_name=args.filter, qos=args.qos,
                                        on_stream_event=lambda e: None)
        emit({"ok": True})
        op.close()
    except Exception as e:  # noqa: BLE001
        emit(error_record(e))
    c.close()


def status(args):
    c = client()
    events = []
    done = threading.Event()

    def on_event(event):
        events.append(event.connection_status_event.status)
        if len(events) >= args.count:
            done.set()

    _, op = c.subscribe_to_iot_core_connection_status(on_stream_event=on_event)
    emit({"event": "subscribed"})
    done.wait(args.timeout)
    for s in list(events):
        emit({"status": s})
    emit({"event": "done", "count": len(events)})
    op.close()
    c.close()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("publish")
    a.add_argument("topic")
    a.add_argument("payload")
    a.add_argument("--qos", default="1")
    a.add_argument("--count", type=int, default=1)
    a.add_argument("--retain", action="store_true")
    a.add_argument("--content-type", default=None)
    a.add_argument("--timed", action="store_true")
    a.add_argument("--user-property", action="append", default=[], metavar="KEY=VALUE")
    a.add_argument("--expiry", type=int, default=None)
    a.add_argument("--correlation-data", default=None)
    a.add_argument("--response-topic", default=None)
    a.add_argument("--payload-format", default=None, help="0 (bytes) or 1 (UTF-8)")
    a = sub.add_parser("try_publish")
    a.add_argument("topic")
    a.add_argument("--size", type=int, default=1)
    a.add_argument("--qos", default="1")
    a = sub.add_parser("subscribe")
    a.add_argument("filter")
    a.add_argument("count", type=int)
    a.add_argument("--qos", default="1")
    a.add_argument("--timeout", type=float, default=10.0)
    a = sub.add_parser("try_subscribe")
    a.add_argument("filter")
    a.add_argument("--qos", default="1")
    a = sub.add_parser("status")
    a.add_argument("count", type=int)
    a.add_argument("--timeout", type=float, default=10.0)
    args = p.parse_args()
    {"publish": publish, "try_publish": try_publish, "subscribe": subscribe,
     "try_subscribe": try_subscribe, "status": status}[args.cmd](args)


if __name__ == "__main__":
    main()
