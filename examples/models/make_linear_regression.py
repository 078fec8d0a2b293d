#!/usr/bin/env python3
"""Build the "y = 2x + noise" linear regression example as an ONNX model.

Such a model is usually trained with TensorFlow (a Dense(1) layer); we avoid that heavy
dependency by fitting the same model in closed form with numpy (ordinary least
squares gives the same optimum a trained Dense(1) layer converges to) and then
emitting the graph directly with onnx.helper.

Usage: make_linear_regression.py [output.onnx]
Default output: my_model/1/model.onnx next to this script (versioned layout,
so the server can load "my_model" version 1 regardless of the cwd).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# 100 points of y = 2x + uniform noise; a fixed random seed so the model is reproducible.
rng = np.random.RandomState(42)
x = rng.rand(100, 1).astype(np.float32)
y = 2 * x + rng.rand(100, 1).astype(np.float32)

# Least squares on [x, 1] -> (w, b).
A = np.hstack([x, np.ones_like(x)]).astype(np.float64)
(w, b), *_ = np.linalg.lstsq(A, y.astype(np.float64).ravel(), rcond=None)
w, b = float(w), float(b)
mse = float(np.mean((x.ravel() * w + b - y.ravel()) ** 2))
print(f"fitted w={w:.6f} b={b:.6f} mse={mse:.6f}")

# y_pred = MatMul(x, W) + B, with W [1,1] and B [1] baked in as initializers.
W = numpy_helper.from_array(np.array([[w]], dtype=np.float32), "W")
B = numpy_helper.from_array(np.array([b], dtype=np.float32), "B")
graph = helper.make_graph(
    [
        helper.make_node("MatMul", ["x", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "B"], ["y_pred"]),
    ],
    "linear_regression",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1])],
    [helper.make_tensor_value_info("y_pred", TensorProto.FLOAT, ["batch", 1])],
    initializer=[W, B],
)
# IR 8 / opset 17: what onnxruntime-node 1.30 loads.
model = helper.make_model(
    graph,
    producer_name="modelship-examples",
    opset_imports=[helper.make_opsetid("", 17)],
    doc_string="Linear regression y = w*x + b fitted by least squares on "
    "y = 2x + uniform noise (100 points, numpy seed 42).",
)
model.ir_version = 8
helper.set_model_props(
    model, {"source": "make_linear_regression.py", "w": str(w), "b": str(b)}
)
onnx.checker.check_model(model)

here = os.path.dirname(os.path.abspath(__file__))
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "my_model", "1", "model.onnx")
os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
onnx.save(model, out)
print(f"wrote {out}")
