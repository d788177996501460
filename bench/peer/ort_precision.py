"""What ONNX Runtime's CPU execution provider runs in reduced precision on this machine.

  bench/.venv-peers/bin/pip install onnx onnxruntime==1.30.0   # the version onnxruntime-node 1.30.0 embeds
  bench/.venv-peers/bin/python bench/peer/ort_precision.py [--time]

Part 1 (kernels): one-node models of the ops a training step needs, in float32, float16 and bfloat16, each
opened in a CPU session: "ok" or ONNX Runtime's error (no kernel registered for the type). Part 2 (--time):
a [M, K] · [K, N] matmul in float32, in every reduced type that has a MatMul kernel, and in int8 (ONNX's
DynamicQuantizeLinear → MatMulInteger → Cast → Mul, which ORT fuses into MatMulIntegerToFloat), at 1 and
2 intra-op threads. Prints JSON lines.
"""
import json
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

TYPES = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16, "bfloat16": TensorProto.BFLOAT16}
OPSET = 21


def model(nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(nodes, "probe", inputs, outputs, list(initializers))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    m.ir_version = 10
    return m.SerializeToString()


def value(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def one_node(op, elem, **attrs):
    """A model of one `op` node over [4, 8] inputs of type `elem` (weights / scales as inputs too)."""
    x, y, out = value("x", elem, [4, 8]), value("y", elem, [8, 8]), value("out", elem, None)
    arity = {
        "MatMul": ["x", "y"],
        "Gemm": ["x", "y"],
        "Add": ["x", "x"],
        "Mul": ["x", "x"],
        "Softmax": ["x"],
        "Gelu": ["x"],
        "Erf": ["x"],
        "Tanh": ["x"],
        "Exp": ["x"],
        "Relu": ["x"],
        "ReduceSum": ["x"],
        "Transpose": ["x"],
        "LayerNormalization": ["x", "s", "s"],
    }[op]
    inputs = [x]
    if "y" in arity:
        inputs.append(y)
    if "s" in arity:
        inputs.append(value("s", elem, [8]))
    return model([helper.make_node(op, arity, ["out"], **attrs)], inputs, [out])


def cast_model(to):
    return model(
        [helper.make_node("Cast", ["x"], ["out"], to=TYPES[to])],
        [value("x", TensorProto.FLOAT, [4, 8])],
        [value("out", TYPES[to], None)],
    )


def try_session(data, threads=1):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    try:
        ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        return "ok"
    except Exception as e:  # ORT raises its own exception types; the message is the evidence
        return str(e).strip().split("\n")[0][:300]


def kernels():
    ops = ["MatMul", "Gemm", "Add", "Mul", "Softmax", "Gelu", "Erf", "Tanh", "Exp", "Relu", "ReduceSum",
           "Transpose", "LayerNormalization"]
    for name, elem in TYPES.items():
        for op in ops:
            print(json.dumps({"dtype": name, "op": op, "session": try_session(one_node(op, elem))}))
        if name != "float32":
            print(json.dumps({"dtype": name, "op": "Cast from float32", "session": try_session(cast_model(name))}))


def matmul_models(m, k, n):
    """float32 and int8 (dynamic activation quantization, per-column symmetric weights) of A·W."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
    a_info = value("a", TensorProto.FLOAT, [m, k])
    out = value("out", TensorProto.FLOAT, [m, n])
    fp32 = model([helper.make_node("MatMul", ["a", "w"], ["out"])], [a_info], [out],
                 [onnx.numpy_helper.from_array(w, "w")])
    scale = np.abs(w).max(0) / 127
    wq = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    int8 = model(
        [
            helper.make_node("DynamicQuantizeLinear", ["a"], ["aq", "as", "azp"]),
            helper.make_node("MatMulInteger", ["aq", "wq", "azp"], ["acc"]),
            helper.make_node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["as", "ws"], ["s"]),
            helper.make_node("Mul", ["accf", "s"], ["out"]),
        ],
        [a_info],
        [out],
        [onnx.numpy_helper.from_array(wq, "wq"), onnx.numpy_helper.from_array(scale.astype(np.float32), "ws")],
    )
    models = {"float32": fp32, "int8 (DynamicQuantizeLinear + MatMulInteger)": int8}
    for name in ("float16", "bfloat16"):
        elem = TYPES[name]
        models[name] = model(
            [
                helper.make_node("Cast", ["a"], ["a16"], to=elem),
                helper.make_node("Cast", ["w"], ["w16"], to=elem),
                helper.make_node("MatMul", ["a16", "w16"], ["o16"]),
                helper.make_node("Cast", ["o16"], ["out"], to=TensorProto.FLOAT),
            ],
            [a_info], [out], [onnx.numpy_helper.from_array(w, "w")],
        )
    return models, rng.standard_normal((m, k)).astype(np.float32)


def timings(runs=20, warmup=5):
    for (m, k, n) in [(1024, 192, 768), (1024, 1024, 1024)]:
        models, a = matmul_models(m, k, n)
        ref = None
        for threads in (1, 2):
            for name, data in models.items():
                opts = ort.SessionOptions()
                opts.intra_op_num_threads = threads
                try:
                    s = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
                except Exception as e:
                    print(json.dumps({"shape": [m, k, n], "threads": threads, "dtype": name,
                                      "error": str(e).strip().split("\n")[0][:300]}))
                    continue
                for _ in range(warmup):
                    out = s.run(None, {"a": a})[0]
                ms = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    s.run(None, {"a": a})
                    ms.append((time.perf_counter() - t0) * 1e3)
                if name == "float32":
                    ref = out
                med = float(np.median(ms))
                print(json.dumps({
                    "shape": [m, k, n], "threads": threads, "dtype": name, "medianMs": round(med, 3),
                    "gflops": round(2 * m * k * n / med / 1e6, 1),
                    "maxRelErr": float(np.abs(out - ref).max() / np.abs(ref).max()) if ref is not None else None,
                }))


if __name__ == "__main__":
    print(json.dumps({"onnxruntime": ort.__version__, "providers": ort.get_available_providers()}))
    kernels()
    if "--time" in sys.argv:
        timings()
