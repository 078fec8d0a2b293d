"""What the client drivers share: the plan that test/runtime/official-clients.test.ts writes, numpy arrays built from
its tensors, and a report of what each step observed.

A driver is run as `python DRIVER.py PLAN.json CLIENT REPORT.json`. It runs the plan's steps for CLIENT in order with
the client's own calls, and writes {"packages": {...}, "results": {step id: {"value": ...} | {"error": "..."}}}.
The drivers judge nothing: the node test compares every value with in-process onnxruntime and every error with the
runtime's own message. Nothing here comes from the clients' sources; they are installed from PyPI (requirements.txt).
"""
import base64
import json
import sys
import traceback
from importlib.metadata import version

import numpy as np

# The OIP v2 datatypes as numpy dtypes (BYTES elements are Python bytes in an object array, as both clients use).
NUMPY_DTYPES = {
    "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "FP16": np.float16, "FP32": np.float32, "FP64": np.float64, "BYTES": np.object_,
}


def load():
    """The plan, this driver's steps and the report's path, from argv."""
    plan_path, client, report_path = sys.argv[1:4]
    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)
    return plan, plan["steps"][client], report_path


def array(spec):
    """A tensor of the plan as the numpy array a user would hand to set_data_from_numpy."""
    shape = spec["shape"]
    if spec["datatype"] == "BYTES":
        return np.array([s.encode("utf-8") for s in spec["strings"]], dtype=np.object_).reshape(shape)
    return np.frombuffer(base64.b64decode(spec["b64"]), dtype=NUMPY_DTYPES[spec["datatype"]]).reshape(shape)


def encode(value):
    """What as_numpy returned, exactly: dtype, shape and little-endian bytes (BYTES: each element's bytes)."""
    if value is None:
        return None
    if not isinstance(value, np.ndarray):
        return {"type": type(value).__name__, "repr": repr(value)[:200]}
    encoded = {"dtype": str(value.dtype), "shape": list(value.shape)}
    if value.dtype == np.object_:
        # Triton's clients give bytes, KServe's JSON path gives str: both are reported as the element's UTF-8 bytes.
        encoded["items"] = [base64.b64encode(x if isinstance(x, bytes) else str(x).encode("utf-8")).decode("ascii")
                            for x in value.ravel()]
    else:
        encoded["b64"] = base64.b64encode(value.astype(value.dtype.newbyteorder("<")).tobytes()).decode("ascii")
    return encoded


def _failure(error):
    # The client's own words, as a user would see them printed: the type and str() of what it raised.
    return {"error": f"{type(error).__name__}: {error}", "where": traceback.format_exc(limit=-3)[-2000:]}


def _write(report_path, packages, results):
    report = {"packages": {p: version(p) for p in packages}, "results": results}
    with open(report_path, "w", encoding="utf-8") as f:
        json.dump(report, f)


def run(steps, handlers, report_path, packages):
    """Runs each step with handlers[step["op"]] and records its value or the error the client raised."""
    results = {}
    for step in steps:
        try:
            results[step["id"]] = {"value": handlers[step["op"]](step)}
        except Exception as error:  # noqa: BLE001 - every failure is a result to report
            results[step["id"]] = _failure(error)
    _write(report_path, packages, results)


async def run_async(steps, handlers, report_path, packages):
    """run() for asyncio clients: each handler is a coroutine function."""
    results = {}
    for step in steps:
        try:
            results[step["id"]] = {"value": await handlers[step["op"]](step)}
        except Exception as error:  # noqa: BLE001
            results[step["id"]] = _failure(error)
    _write(report_path, packages, results)
