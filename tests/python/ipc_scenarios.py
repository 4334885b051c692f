"""Scenarios run with the real AWS IoT Device SDK (awsiotsdk) against ggipc.

Each invocation is one component: the socket path and token come from the
environment, as the nucleus gives them. Results are printed as JSON lines for
the Rust tests to check.

    subscribe FILTER COUNT [--receive-mode M] [--timeout S] [--summary] [--progress N] [--v1]
    publish TOPIC (--json TEXT | --binary-b64 B64) [--count N] [--seq-size BYTES]
    ops JSON_LIST_OF_OPERATIONS
    connect
    respond FILTER COUNT [--timeout S]
    watch_close FILTER... [--timeout S]
    v1_roundtrip FILTER TOPIC   (GreengrassCoreIPCClient, not V2)
"""

import argparse
import base64
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


def subscribe(args):
    # The default executor is a thread pool, which runs callbacks out of
    # order; one worker keeps the order in which the broker delivered.
    client = GreengrassCoreIPCClientV2(executor=concurrent.futures.ThreadPoolExecutor(max_workers=1))
    received = []
    done = threading.Event()
    closed = threading.Event()
    state = {"in_order": True, "last_seq": -1, "count": 0}

    def on_event(event):
        if event.json_message is not None:
            record = {"topic": event.json_message.context.topic, "json": event.json_message.message}
            seq = event.json_message.message.get("seq") if isinstance(event.json_message.message, dict) else None
        else:
            data = event.binary_message.message
            record = {"topic": event.binary_message.context.topic,
                      "binary_b64": base64.b64encode(data).decode()}
            seq = int.from_bytes(data[:8], "big") if args.summary and len(data) >= 8 else None
        state["count"] += 1
        if seq is not None:
            if seq <= state["last_seq"]:
                state["in_order"] = False
            state["last_seq"] = seq
        if not args.summary:
            received.append(record)
        if args.progress and state["count"] % args.progress == 0:
            emit({"progress": state["count"]})
        if state["count"] >= args.count:
            done.set()

    def on_closed():
        closed.set()

    kwargs = {}
    if args.receive_mode:
        kwargs["receive_mode"] = args.receive_mode
    _, operation = client.subscribe_to_topic(
        topic=args.filter, on_stream_event=on_event, on_stream_closed=on_closed, **kwargs)
    emit({"event": "subscribed"})
    done.wait(args.timeout)
    for record in received:
        emit(record)
    emit({"event": "done", "count": state["count"], "in_order": state["in_order"],
          "last_seq": state["last_seq"]})
    operation.close()
    client.close()


def publish(args):
    client = GreengrassCoreIPCClientV2()
    try:
        for i in range(args.count):
            if args.json is not None:
                message = json.loads(args.json)
                if args.count > 1:
                    message["seq"] = i
                client.publish_to_topic(topic=args.topic, publish_message=model.PublishMessage(
                    json_message=model.JsonMessage(message=message)))
            else:
                data = base64.b64decode(args.binary_b64)
                if args.count > 1:
                    data = i.to_bytes(8, "big") + data
                client.publish_to_topic(topic=args.topic, publish_message=model.PublishMessage(
                    binary_message=model.BinaryMessage(message=data)))
        emit({"ok": True})
    except Exception as exc:  # the test checks the error's type and text
        emit(error_record(exc))
    client.close()


def ops(args):
    """Runs each {"op": name, "args": {...}} and reports the outcome."""
    client = GreengrassCoreIPCClientV2()
    for spec in json.loads(args.spec):
        name, kwargs = spec["op"], spec.get("args", {})
        if "publish_message" in kwargs:
            pm = kwargs["publish_message"]
            kwargs["publish_message"] = model.PublishMessage(
                json_message=model.JsonMessage(message=pm["json"]) if "json" in pm else None,
                binary_message=model.BinaryMessage(message=base64.b64decode(pm["binary_b64"]))
                if "binary_b64" in pm else None)
        try:
            if name == "subscribe_to_topic":
                _, op = client.subscribe_to_topic(on_stream_event=lambda e: None, **kwargs)
                op.close()
                emit({"op": name, "ok": True})
            else:
                response = getattr(client, name)(**kwargs)
                emit({"op": name, "ok": True, "response": repr(response)})
        except Exception as exc:
            record = error_record(exc)
            record["op"] = name
            emit(record)
    client.close()


def respond(args):
    """Field case BR-13: publish from inside the subscription callback."""
    client = GreengrassCoreIPCClientV2()
    done = threading.Event()
    stats = {"handled": 0, "errors": 0, "max_ms": 0.0}

    def on_event(event):
        topic = event.json_message.context.topic
        started = time.monotonic()
        try:
            client.publish_to_topic(topic="resp/" + topic.split("/", 1)[1], publish_message=model.PublishMessage(
                json_message=model.JsonMessage(message={"re": topic})))
        except Exception:  # counted; the test fails on any
            stats["errors"] += 1
        stats["max_ms"] = max(stats["max_ms"], (time.monotonic() - started) * 1000)
        stats["handled"] += 1
        if stats["handled"] >= args.count:
            done.set()

    _, operation = client.subscribe_to_topic(topic=args.filter, on_stream_event=on_event)
    emit({"event": "subscribed"})
    done.wait(args.timeout)
    emit(stats)
    operation.close()
    client.close()


def watch_close(args):
    """Field case BR-19: streams and connection end when the broker stops."""
    import awsiot.greengrasscoreipc
    from awsiot.eventstreamrpc import LifecycleHandler

    disconnected = threading.Event()

    class Handler(LifecycleHandler):
        def on_disconnect(self, reason):
            disconnected.set()

    client = GreengrassCoreIPCClientV2(
        client=awsiot.greengrasscoreipc.connect(lifecycle_handler=Handler()))
    closed = []
    lock = threading.Lock()

    def closer():
        with lock:
            closed.append(time.time())

    for f in args.filters:
        client.subscribe_to_topic(topic=f, on_stream_event=lambda e: None, on_stream_closed=closer)
    emit({"event": "subscribed"})
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline and (len(closed) < len(args.filters) or not disconnected.is_set()):
        time.sleep(0.01)
    emit({"closed": len(closed), "disconnected": disconnected.is_set(),
          "last_closed_at": max(closed) if closed else None, "now": time.time()})


def v1_roundtrip(args):
    """The first-generation client, GreengrassCoreIPCClient, with its
    operation objects and stream handler: subscribe, publish JSON and
    binary to itself, print what arrived."""
    import awsiot.greengrasscoreipc
    from awsiot.greengrasscoreipc.client import SubscribeToTopicStreamHandler

    client = awsiot.greengrasscoreipc.connect()
    received = []
    both = threading.Event()

    class Handler(SubscribeToTopicStreamHandler):
        def on_stream_event(self, event):
            if event.json_message is not None:
                received.append({"topic": event.json_message.context.topic,
                                 "json": event.json_message.message})
            else:
                received.append({"topic": event.binary_message.context.topic,
                                 "binary_b64": base64.b64encode(event.binary_message.message).decode()})
            if len(received) == 2:
                both.set()

        def on_stream_error(self, error):
            emit(error_record(error))
            return True

    request = model.SubscribeToTopicRequest(topic=args.filter,
                                            receive_mode=model.ReceiveMode.RECEIVE_ALL_MESSAGES)
    operation = client.new_subscribe_to_topic(Handler())
    operation.activate(request).result(10)
    operation.get_response().result(10)
    for message in (model.PublishMessage(json_message=model.JsonMessage(message={"v": 1})),
                    model.PublishMessage(binary_message=model.BinaryMessage(message=b"\x00v1"))):
        publish_op = client.new_publish_to_topic()
        publish_op.activate(model.PublishToTopicRequest(topic=args.topic, publish_message=message))
        publish_op.get_response().result(10)
    both.wait(10)
    for record in received:
        emit(record)
    operation.close().result(10)
    client.close()


def connect(_args):
    # Timed here, not by the caller: interpreter start-up on a busy machine
    # is not the broker's answer.
    started = time.monotonic()
    try:
        client = GreengrassCoreIPCClientV2()
        emit({"connected": True, "seconds": time.monotonic() - started})
        client.close()
    except Exception as exc:
        record = error_record(exc)
        record["connected"] = False
        record["seconds"] = time.monotonic() - started
        emit(record)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("subscribe")
    p.add_argument("filter")
    p.add_argument("count", type=int)
    p.add_argument("--receive-mode")
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--summary", action="store_true")
    p.add_argument("--progress", type=int, default=0)
    p = sub.add_parser("publish")
    p.add_argument("topic")
    p.add_argument("--json")
    p.add_argument("--binary-b64")
    p.add_argument("--count", type=int, default=1)
    p = sub.add_parser("ops")
    p.add_argument("spec")
    sub.add_parser("connect")
    p = sub.add_parser("v1_roundtrip")
    p.add_argument("filter")
    p.add_argument("topic")
    p = sub.add_parser("respond")
    p.add_argument("filter")
    p.add_argument("count", type=int)
    p.add_argument("--timeout", type=float, default=30.0)
    p = sub.add_parser("watch_close")
    p.add_argument("filters", nargs="+")
    p.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    {"subscribe": subscribe, "publish": publish, "ops": ops, "connect": connect,
     "respond": respond, "watch_close": watch_close,
     "v1_roundtrip": v1_roundtrip}[args.command](args)


if __name__ == "__main__":
    main()
