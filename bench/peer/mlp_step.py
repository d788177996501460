"""PyTorch peer of `deno task bench engine`: the same MLP training step in eager PyTorch, and torch.mm.

Reads a JSON request on stdin:
  {"inputs": "<file.safetensors>", "threads": T, "warmup": W, "runs": N, "lr": 0.01, "momentum": 0.9,
   "matmul": [1024, 2048], "matmulRepeats": {"warmup": W, "runs": N}}
The safetensors file holds kappa's initial parameters (Linear weights stored [in, out]), in the layer
order its metadata "layers" lists, and the batch "x" (float32) and "y" (int64).
Writes one JSON object on stdout: versions, the BLAS library actually mapped into this process, thread
counts, the loss before every step, the time of every timed step and matmul run (milliseconds).
"""
import ctypes
import json
import os
import re
import struct
import sys
import time

import torch
import torch.nn.functional as F

DTYPES = {"F32": (torch.float32, 4), "I32": (torch.int32, 4), "I64": (torch.int64, 8)}


def read_safetensors(path):
    """Tensors and metadata of a safetensors file (8-byte header length, JSON header, raw bytes)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    metadata = header.pop("__metadata__", {})
    data = bytearray(blob[8 + n :])
    tensors = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        dtype, size = DTYPES[e["dtype"]]
        t = torch.frombuffer(data, dtype=dtype, count=(end - begin) // size, offset=begin)
        tensors[name] = t.reshape(e["shape"]).clone()
    return tensors, metadata


def mapped_blas():
    """Paths of the BLAS/LAPACK libraries mapped into this process (what libblas.so.3 resolved to)."""
    with open(f"/proc/{os.getpid()}/maps") as f:
        paths = {line.split()[-1] for line in f if "/" in line}
    return sorted(p for p in paths if any(k in os.path.basename(p) for k in ("blas", "lapack", "mkl")))


def openblas(libraries):
    """OpenBLAS's own handle, to pin and report its thread count (torch.set_num_threads does not)."""
    for path in libraries:
        if "openblas" in path:
            lib = ctypes.CDLL(path)
            if hasattr(lib, "openblas_get_num_threads"):
                lib.openblas_get_config.restype = ctypes.c_char_p
                return lib
    return None


def pin_threads(threads):
    """Sets PyTorch's and OpenBLAS's thread counts to `threads`; returns what is in use, for the report."""
    torch.set_num_threads(threads)
    torch.mm(torch.ones(8, 8), torch.ones(8, 8))  # loads the BLAS, so that /proc/self/maps shows it
    libraries = mapped_blas()
    lib = openblas(libraries)
    if lib is not None:
        lib.openblas_set_num_threads(threads)
    return {
        "torch": torch.__version__,
        "blas": {
            "libraries": [os.path.realpath(p) for p in libraries],
            "openblasConfig": lib.openblas_get_config().decode() if lib is not None else None,
            "openblasThreads": lib.openblas_get_num_threads() if lib is not None else None,
            "torchBuild": " ".join(re.findall(r"BLAS_INFO=\w+", torch.__config__.show())),
        },
        "torchThreads": torch.get_num_threads(),
    }


def timed(fn, warmup, runs):
    """Results of warmup + runs calls of fn, and the wall time of the timed ones in milliseconds."""
    results, ms = [], []
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        results.append(fn())
        if i >= warmup:
            ms.append((time.perf_counter() - t0) * 1e3)
    return results, ms


def mlp_step(tensors, layers, req):
    """Trains the MLP made of kappa's parameters on the fixed batch: loss before each step, step times."""
    linears = []
    for name in layers:
        w = tensors[f"{name}.weight"]  # [in, out], as kappa stores it
        lin = torch.nn.Linear(w.shape[0], w.shape[1])
        with torch.no_grad():
            lin.weight.copy_(w.t())  # torch.nn.Linear stores [out, in]
            lin.bias.copy_(tensors[f"{name}.bias"])
        linears.append(lin)
    blocks = []
    for i, lin in enumerate(linears):
        blocks.append(lin)
        if i < len(linears) - 1:
            blocks.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*blocks)
    opt = torch.optim.SGD(model.parameters(), lr=req["lr"], momentum=req["momentum"])
    x, y = tensors["x"], tensors["y"]

    def step():
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)  # the default from PyTorch 2.0 on; skips a memset per step
        return loss.item()

    return timed(step, req["warmup"], req["runs"])


def matmul(n, repeats):
    """Times of torch.mm for n×n · n×n float32 (the peer's MatMul peak)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(n, n, generator=g) - 0.5, torch.rand(n, n, generator=g) - 0.5
    c = torch.empty(n, n)
    _, ms = timed(lambda: torch.mm(a, b, out=c), repeats["warmup"], repeats["runs"])  # out=: no allocation
    return {"n": n, "ms": ms}


def main():
    req = json.load(sys.stdin)
    environment = pin_threads(req["threads"])
    tensors, metadata = read_safetensors(req["inputs"])
    losses, step_ms = mlp_step(tensors, metadata["layers"].split(","), req)
    mm = [matmul(n, req["matmulRepeats"]) for n in req["matmul"]]
    json.dump(
        {
            **environment,
            "losses": losses,
            "stepMs": step_ms,
            "matmul": mm,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
