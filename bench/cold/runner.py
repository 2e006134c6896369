"""One cold start, as the Lambda Python runtime makes it: a fresh interpreter imports the
handler (init), then answers one invocation. Run as a script in its own process:

    python -I -S bench/cold/runner.py CODE_DIR MODULE.ATTRIBUTE INVOCATION.json [PATH ...]

CODE_DIR is the function's folder, PATH the folders that stand for the layer and the runtime's
packages (-S: nothing else is on sys.path). INVOCATION.json holds the event and the trace header
Lambda sets for it. Prints one JSON line as soon as the answer is made: the milliseconds since
this script started (init, and init plus the first answer), after the marker `cold-start-report `, the resident memory after each, and
whether the X-Ray SDK or botocore were loaded by then. Imports nothing of the bench itself.
"""

import time

STARTED = time.perf_counter()

# After the clock starts: what the Lambda Python runtime (awslambdaric's bootstrap, its client
# and marshaller) has imported before it imports the handler, part of every function's init.
import concurrent.futures  # noqa: E402, F401
import decimal  # noqa: E402, F401
import importlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402, F401
import math  # noqa: E402, F401
import os  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402, F401

MARKER = "cold-start-report "


def rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def loaded() -> dict:
    return {name: name in sys.modules for name in ("aws_xray_sdk", "botocore.session", "boto3", "psycopg")}


class Context:
    """The parts of Lambda's context object the handlers and Powertools read."""

    def __init__(self, name: str) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
        self.aws_request_id = os.urandom(16).hex()
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "cold"
        self._deadline = time.monotonic() + 10

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


def main() -> None:
    code_dir, handler_name, invocation_file, *paths = sys.argv[1:]
    with open(invocation_file, encoding="utf-8") as file:
        invocation = json.load(file)
    sys.path[:0] = [code_dir, *paths]
    os.environ["LAMBDA_TASK_ROOT"] = code_dir
    module_name, attribute = handler_name.rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), attribute)
    init_ms = (time.perf_counter() - STARTED) * 1000
    after_init = {"rss_kib": rss_kib(), "loaded": loaded()}
    os.environ["_X_AMZN_TRACE_ID"] = invocation["trace_header"]
    result = handler(invocation["event"], Context(os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "bench")))
    answered_ms = (time.perf_counter() - STARTED) * 1000
    cpu_ms = time.process_time() * 1000  # the process's CPU, interpreter start included
    report = {"init_ms": init_ms, "answered_ms": answered_ms, "cpu_ms": cpu_ms, "status": result["statusCode"],
              "body": result["body"], "after_init": after_init,
              "after_answer": {"rss_kib": rss_kib(), "loaded": loaded()}}  # fmt: skip
    # The logs and metrics go to stdout as in Lambda; the report is the line with the marker.
    sys.stdout.write(MARKER + json.dumps(report) + "\n")
    sys.stdout.flush()


main()
