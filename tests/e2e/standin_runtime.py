"""A tiny Python stand-in for a custom Lambda runtime, used only to test the harness itself.

Events (JSON): {"echo": X} -> response {"echo": X}; {"fail": "msg"} -> error; {"exit": N} -> exits.
With STANDIN_INIT_ERROR set it posts /init/error and exits 1.
"""
import json
import os
import sys
import urllib.request

api = os.environ["AWS_LAMBDA_RUNTIME_API"]
base = f"http://{api}/2018-06-01/runtime"


def post(path, body, headers=None):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers=headers or {})
    urllib.request.urlopen(req).read()


if os.environ.get("STANDIN_INIT_ERROR"):
    post("/init/error", {"errorType": "Runtime.InitError", "errorMessage": os.environ["STANDIN_INIT_ERROR"]},
         {"Lambda-Runtime-Function-Error-Type": "Runtime.InitError"})
    sys.exit(1)

while True:
    with urllib.request.urlopen(base + "/invocation/next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        for h in ("Lambda-Runtime-Deadline-Ms", "Lambda-Runtime-Invoked-Function-Arn", "Lambda-Runtime-Trace-Id"):
            assert r.headers.get(h), h
        event = json.loads(r.read())
    print(json.dumps({"request_id": rid, "event": event}), flush=True)
    if "exit" in event:
        sys.exit(event["exit"])
    if "fail" in event:
        post(f"/invocation/{rid}/error", {"errorType": "StandIn", "errorMessage": event["fail"]},
             {"Lambda-Runtime-Function-Error-Type": "StandIn"})
    else:
        post(f"/invocation/{rid}/response", {"echo": event.get("echo"),
                                              "deadline_ms": int(r.headers["Lambda-Runtime-Deadline-Ms"])})
