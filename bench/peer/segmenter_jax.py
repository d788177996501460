"""JAX peer of `deno task bench perf`: the Segmenter + RankSeg model of segmenter.py written as JAX
functions, with the whole training step (forward, losses, gradient, SGD-momentum update) in one jitted
function, run in the virtual environment the bench manages (bench/peer_venv.ts).

Reads a JSON request on stdin:
  {"inputs": "<file.safetensors>", "threads": T, "pin": true | false,
   "train": {"warmup": W, "runs": N} | null, "infer": {"warmup": W, "runs": N} | null}
At T = 1 XLA's multi-threaded Eigen kernels are off; with "pin" the process is bound to the first T
cores (XLA has no flag for another intra-op thread count: its pool takes the cores the process may use). The parameters keep kappa's layout (linear weights [in, out]); the patch embedding is
a matmul over (channel, row, column) patches, as kappa computes it. Writes one JSON object on stdout, with
the fields of segmenter_torch2.py's answer.
"""
import json
import os
import resource
import struct
import sys
import time


def configure(threads, pin):
    """Before JAX loads: XLA's thread count, and the cores the process may run on."""
    if pin:
        os.sched_setaffinity(0, set(range(threads)))
    flags = ["--xla_cpu_multi_thread_eigen=false"] if threads == 1 else []
    os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), *flags]).strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")


def read_safetensors(path):
    """Tensors (numpy) and metadata of a safetensors file; numpy only, so that JAX runs without torch."""
    import numpy as np

    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    metadata = header.pop("__metadata__", {})
    dtypes = {"F32": np.float32, "I32": np.int32, "I64": np.int64}
    tensors = {}
    for name, e in header.items():
        begin, end = e["data_offsets"]
        data = np.frombuffer(blob[8 + n + begin : 8 + n + end], dtype=dtypes[e["dtype"]])
        tensors[name] = data.reshape(e["shape"]).copy()
    return tensors, metadata


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def build(c):
    """The model's forward, training loss and jitted step, closed over the settings `c`."""
    import jax
    import jax.numpy as jnp

    head_eps = 1e-5

    def layer_norm(p, x, eps):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / jnp.sqrt(var + eps) * p["weight"] + p["bias"]

    def linear(p, x):
        return x @ p["weight"] + p["bias"]

    def attention(p, x, heads):
        b, n, d = x.shape
        dh = d // heads
        qkv = linear(p["qkv"], x).reshape(b, n, 3, heads, dh).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        weights = jax.nn.softmax((q * dh**-0.5) @ k.swapaxes(-2, -1), axis=-1)
        return linear(p["proj"], (weights @ v).transpose(0, 2, 1, 3).reshape(b, n, d))

    def block(p, x, heads, eps):
        x = x + attention(p["attn"], layer_norm(p["norm1"], x, eps), heads)
        h = jax.nn.gelu(linear(p["mlp"]["fc1"], layer_norm(p["norm2"], x, eps)), approximate=False)
        return x + linear(p["mlp"]["fc2"], h)

    def backbone(p, images):
        b, _, height, width = images.shape
        s = c["patch"]
        gh, gw = height // s, width // s
        patches = images.reshape(b, 3, gh, s, gw, s).transpose(0, 2, 4, 1, 3, 5).reshape(b, gh * gw, 3 * s * s)
        x = linear(p["patchEmbed"], patches) + p["posEmbed"]
        for blk in p["blocks"]:
            x = block(blk, x, c["heads"], c["backboneEps"])
        return layer_norm(p["norm"], x, c["backboneEps"])

    def xi(p, pixels, grid):
        b, n, d = pixels.shape
        pool = c["xi"]["pool"]
        fh, fw = grid[0] // pool, grid[1] // pool
        pooled = pixels.reshape(b, pool, fh, pool, fw, d).mean((2, 4)).reshape(b, pool * pool, d)
        tokens = jnp.concatenate([pooled, jnp.broadcast_to(p["classEmbed"], (b, *p["classEmbed"].shape))], 1)
        features = layer_norm(p["norm"], block(p["block"], tokens, c["xi"]["heads"], head_eps)[:, pool * pool :], head_eps)
        return (features * p["fc"]["weight"]).sum(-1) + p["fc"]["bias"], features

    def normalize(x):
        return x / jnp.maximum(jnp.sqrt((x * x).sum(-1, keepdims=True)), 1e-12)

    def psi(p, pixels, classes):
        n = pixels.shape[1]
        x = jnp.concatenate([pixels, classes], 1)
        for blk in p["blocks"]:
            x = block(blk, x, c["psi"]["heads"], head_eps)
        x = layer_norm(p["norm"], x, head_eps)
        patches = normalize(x[:, :n] @ p["projPatch"])
        cls = normalize(x[:, n:] @ p["projClasses"])
        return patches @ cls.swapaxes(1, 2)

    def forward(p, images):
        grid = (images.shape[2] // c["patch"], images.shape[3] // c["patch"])
        pixels = linear(p["proj"], backbone(p["backbone"], images))
        scores, features = xi(p["xi"], pixels, grid)
        selected = jax.lax.top_k(jax.lax.stop_gradient(scores), c["kappa"])[1]
        chosen = jnp.take_along_axis(features, selected[:, :, None], axis=1)
        logits = psi(p["psi"], pixels, chosen) * jnp.exp(-p["temperature"]["logTau"])
        b, k = selected.shape
        return scores, selected, logits.swapaxes(1, 2).reshape(b, k, *grid)

    def upsample(logits, size):
        return jax.image.resize(logits, (*logits.shape[:2], *size), method="bilinear")

    def loss_fn(p, images, labels):
        classes, ignore, a = c["classes"], c["ignoreIndex"], c["asl"]
        scores, selected, logits = forward(p, images)
        b, k = selected.shape
        rows = jnp.arange(b)[:, None]
        flat = labels.reshape(b, -1)
        safe = jnp.where(flat == ignore, classes, flat)
        table = jnp.full((b, classes + 1), ignore, labels.dtype).at[rows, selected].set(jnp.arange(k, dtype=labels.dtype))
        targets = jnp.take_along_axis(table, safe, axis=1)  # [b, h·w]
        logp = jax.nn.log_softmax(upsample(logits, labels.shape[1:]).reshape(b, k, -1), axis=1)
        valid = targets != ignore
        picked = jnp.take_along_axis(logp, jnp.where(valid, targets, 0)[:, None, :], axis=1)[:, 0]
        pixel = -(picked * valid).sum() / valid.sum()
        present = jnp.zeros((b, classes + 1)).at[rows, safe].set(1.0)[:, :classes]
        prob = jax.nn.sigmoid(scores)
        q = jnp.minimum(1 - prob + a["clip"], 1) if a["clip"] > 0 else 1 - prob
        multi = present * jnp.log(jnp.maximum(prob, a["eps"])) + (1 - present) * jnp.log(jnp.maximum(q, a["eps"]))
        if a["gammaPos"] > 0 or a["gammaNeg"] > 0:
            pt = present * prob + (1 - present) * q
            weight = jnp.power(1 - pt, present * a["gammaPos"] + (1 - present) * a["gammaNeg"])
            multi = multi * (jax.lax.stop_gradient(weight) if a["detachFocusing"] else weight)
        multi = -multi.sum() / scores.size
        return c["pixelLossWeight"] * pixel + a["weight"] * multi

    lr, momentum = c["lr"], c["momentum"]

    def step(params, buf, images, labels):
        loss, grads = jax.value_and_grad(loss_fn)(params, images, labels)
        buf = jax.tree_util.tree_map(lambda m, g: momentum * m + g, buf, grads)
        params = jax.tree_util.tree_map(lambda w, m: w - lr * m, params, buf)
        return loss, params, buf

    def predict(p, image):
        scores, selected, logits = forward(p, image)
        rank = upsample(logits, image.shape[2:]).argmax(1).reshape(1, -1)
        return jax.nn.sigmoid(scores), jnp.take_along_axis(selected, rank, axis=1)

    return jax.jit(step, donate_argnums=(0, 1)), jax.jit(predict)


def nest(tensors):
    """kappa's flat names ("model.backbone.blocks.3.attn.qkv.weight") → nested dicts, blocks as lists."""
    import jax.numpy as jnp

    root = {}
    for name, t in tensors.items():
        if not name.startswith("model."):
            continue
        keys = name[len("model.") :].split(".")
        node = root
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = jnp.asarray(t)

    def lists(node):
        if not isinstance(node, dict):
            return node
        if node and all(k.isdigit() for k in node):
            return [lists(node[str(i)]) for i in range(len(node))]
        return {k: lists(v) for k, v in node.items()}

    return lists(root)


def timed(fn, warmup, runs):
    results, ms = [], []
    for i in range(warmup + runs):
        t0 = time.perf_counter()
        results.append(fn())
        if i >= warmup:
            ms.append((time.perf_counter() - t0) * 1e3)
    return results, ms


def main():
    req = json.load(sys.stdin)
    configure(req["threads"], req.get("pin", False))
    import jax
    import jax.numpy as jnp
    import jaxlib

    tensors, metadata = read_safetensors(req["inputs"])
    c = json.loads(metadata["config"])
    step, predict = build(c)
    answer = {
        "torch": f"JAX {jax.__version__}",
        "backend": f"XLA:CPU, jaxlib {jaxlib.__version__}",
        "torchThreads": req["threads"],
    }
    images = jnp.asarray(tensors["images"])
    labels = jnp.asarray(tensors["labels"])
    if req.get("train"):
        params = nest(tensors)
        buf = jax.tree_util.tree_map(jnp.zeros_like, params)
        state = {"params": params, "buf": buf}

        def once():
            loss, state["params"], state["buf"] = step(state["params"], state["buf"], images, labels)
            return float(loss)

        before = rss_kib()
        t0 = time.perf_counter()
        first = once()
        first_seconds = time.perf_counter() - t0
        r = req["train"]
        losses, ms = timed(once, r["warmup"], r["runs"])
        answer.update(
            losses=[first, *losses],
            stepMs=ms,
            firstStepSeconds=first_seconds,
            rssBeforeKiB=before,
            peakRssKiB=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        )
    if req.get("infer"):
        params = nest(tensors)
        image = images[:1]
        r = req["infer"]
        _, ms = timed(lambda: jax.block_until_ready(predict(params, image)), r["warmup"], r["runs"])
        answer.update(inferMs=ms)
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
