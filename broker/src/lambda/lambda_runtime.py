"""ggipc's Python runtime for Lambda functions.

The broker's Lambda launcher starts one of these per worker:

    python -u lambda_runtime.py --handler=module.function [execArgs...]

with its end of a socket pair as standard input, the function's code folder
in AWS_GREENGRASS_LAMBDA_ARTIFACT_PATH and the work folder as the current
directory. The socket is the work channel; standard output and error are the
function's log, which the broker copies into the component log line by line.

Work channel frames, both ways: a 4-byte big-endian length, then that many
bytes, the first of which is the kind.

    broker -> runtime
      I  invoke: 4-byte big-endian header length, the header
         "<invocation id>\\n<topic>" in UTF-8, then the payload bytes
    runtime -> broker
      R  the handler is imported; work may come
      F  the import failed: the traceback text
      D  done: the invocation id
      H  the handler raised: "<invocation id>\\n<exception text>"
      J  the payload is not JSON (json functions): "<invocation id>\\n<reason>"

One invocation at a time: the broker sends the next only after D, H or J.
The runtime exits when the channel closes. Timeouts are the broker's
business: it kills a worker whose handler runs too long.
"""

import importlib
import json
import logging
import os
import sys
import time
import traceback

# The channel moves off fd 0 at once, to a descriptor that is not inherited,
# and fd 0 becomes /dev/null: a subprocess the handler starts must neither
# read work items nor keep the channel open after this process is gone.
_CHANNEL = os.dup(0)
_null = os.open(os.devnull, os.O_RDONLY)
os.dup2(_null, 0)
os.close(_null)
_reader = os.fdopen(_CHANNEL, "rb", buffering=1 << 16, closefd=False)

_LEVEL_NAMES = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARN",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "FATAL",
}


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _send(kind, body=b""):
    _write_all(_CHANNEL, (len(body) + 1).to_bytes(4, "big") + kind + body)


def _receive():
    head = _reader.read(4)
    if len(head) < 4:
        return None
    length = int.from_bytes(head, "big")
    body = _reader.read(length)
    if len(body) < length:
        return None
    return body


class _LogStream:
    """sys.stdout and sys.stderr of the function.

    As in the Greengrass runtime, every write call is one log record
    prefixed with the caller's file and line, and a write of a bare newline
    is dropped: print("Event : ", text) logs "file.py:4,Event : ",
    "file.py:4, " and "file.py:4,<text>". The broker logs standard output at
    INFO and standard error at ERROR.
    """

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, fd):
        self._fd = fd
        # Raw bytes written here bypass the records, as they would on a
        # real file's buffer.
        self.buffer = open(fd, "wb", buffering=0, closefd=False)

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        if text and text != "\n":
            frame = sys._getframe(1)
            record = "%s:%d,%s" % (
                os.path.basename(frame.f_code.co_filename),
                frame.f_lineno,
                text[:-1] if text.endswith("\n") else text,
            )
            _write_all(self._fd, (record + "\n").encode("utf-8", "replace"))
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pass

    def fileno(self):
        return self._fd

    def isatty(self):
        return False

    def writable(self):
        return True

    def readable(self):
        return False


class _LogHandler(logging.Handler):
    """Python logging keeps its level: each line of a record is written to
    standard error tagged "[LEVEL]", which the broker reads as the level."""

    def emit(self, record):
        try:
            level = _LEVEL_NAMES.get(record.levelno, "INFO")
            lines = self.format(record).split("\n")
            out = ["[%s]%s:%d,%s" % (level, record.filename, record.lineno, lines[0])]
            out.extend("[%s]%s" % (level, line) for line in lines[1:])
            _write_all(2, ("\n".join(out) + "\n").encode("utf-8", "replace"))
        except Exception:
            self.handleError(record)


class ClientContext(object):
    """context.client_context: custom["subject"] is the topic."""

    __slots__ = ("client", "custom", "env")

    def __init__(self, custom):
        self.client = None
        self.custom = custom
        self.env = None


class LambdaContext(object):
    """The handler's context, with the fields of the AWS Lambda context."""

    __slots__ = (
        "function_name",
        "function_version",
        "invoked_function_arn",
        "memory_limit_in_mb",
        "aws_request_id",
        "log_group_name",
        "log_stream_name",
        "identity",
        "client_context",
        "_deadline",
    )

    def __init__(self, request_id, topic, deadline):
        self.function_name = _FUNCTION_NAME
        self.function_version = _FUNCTION_VERSION
        self.invoked_function_arn = _FUNCTION_ARN
        self.memory_limit_in_mb = _MEMORY_MB
        self.aws_request_id = request_id
        self.log_group_name = _LOG_GROUP
        self.log_stream_name = _WORKER_ID
        self.identity = None
        self.client_context = ClientContext({"subject": topic})
        self._deadline = deadline

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


_ENV = os.environ
_FUNCTION_NAME = _ENV.get("AWS_LAMBDA_FUNCTION_NAME", "")
_FUNCTION_VERSION = _ENV.get("AWS_LAMBDA_FUNCTION_VERSION", "")
_FUNCTION_ARN = _ENV.get("AWS_GREENGRASS_LAMBDA_ARN", "")
_MEMORY_MB = int(_ENV.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "0"))
_TIMEOUT_S = int(_ENV.get("GGIPC_LAMBDA_TIMEOUT_MS", "3000")) / 1000.0
_BINARY = _ENV.get("AWS_GREENGRASS_LAMBDA_ENCODING_TYPE", "json") == "binary"
_LOG_GROUP = "/aws/greengrass/Lambda/" + _FUNCTION_NAME
_WORKER_ID = _ENV.get("AWS_GREENGRASS_LAMBDA_WORKER_ID", "")


def _load_handler():
    name = _ENV.get("AWS_GREENGRASS_LAMBDA_FUNCTION_HANDLER", "")
    for arg in sys.argv[1:]:
        if arg.startswith("--handler="):
            name = arg[len("--handler="):]
    module_name, _, function_name = name.rpartition(".")
    if not module_name or not function_name:
        raise ValueError("handler %r is not of the form module.function" % name)
    module = importlib.import_module(module_name)
    handler = getattr(module, function_name)
    if not callable(handler):
        raise TypeError("handler %r is not callable" % name)
    return handler


def main():
    # The function's folder replaces the runtime's as the first place
    # imports look, so its modules win over anything next to this file.
    sys.path[0] = _ENV.get("AWS_GREENGRASS_LAMBDA_ARTIFACT_PATH", ".")
    sys.stdout = _LogStream(1)
    sys.stderr = _LogStream(2)
    logging.getLogger().addHandler(_LogHandler())
    try:
        handler = _load_handler()
    except BaseException:
        # Module code that raises, calls sys.exit() or is interrupted: all
        # are a failed start, reported with the traceback.
        _send(b"F", traceback.format_exc().encode("utf-8", "replace"))
        return 1
    _send(b"R")
    loads = json.loads
    while True:
        frame = _receive()
        if frame is None:
            return 0
        if frame[:1] != b"I":
            continue
        header_end = 5 + int.from_bytes(frame[1:5], "big")
        request_id, _, topic = frame[5:header_end].decode("utf-8", "replace").partition("\n")
        payload = frame[header_end:]
        deadline = time.monotonic() + _TIMEOUT_S
        if _BINARY:
            event = payload
        elif not payload:
            event = None
        else:
            try:
                event = loads(payload)
            except (ValueError, RecursionError) as e:
                _send(b"J", ("%s\n%s" % (request_id, e)).encode("utf-8", "replace"))
                continue
        try:
            handler(event, LambdaContext(request_id, topic, deadline))
        except Exception as e:
            # The traceback goes to the log; the broker logs the summary
            # with the invocation and the topic.
            _write_all(2, traceback.format_exc().encode("utf-8", "replace"))
            text = "%s: %s" % (type(e).__name__, e)
            _send(b"H", ("%s\n%s" % (request_id, text)).encode("utf-8", "replace"))
            continue
        _send(b"D", request_id.encode())


if __name__ == "__main__":
    sys.exit(main())
