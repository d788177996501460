"""PyTorch 2 peers of `deno task bench perf`: the Segmenter + RankSeg model of segmenter.py (or, when the
file's config names a MobileNetV2 backbone, segmenter_mobilenet.py's), run as one of four sides, in
the virtual environment the bench manages (bench/peer_venv.ts):

  eager          eager PyTorch, float32
  compile        torch.compile of the forward and loss (AOTAutograd compiles the backward with it); the
                 SGD update stays eager, as in a usual training loop
  eager-bf16     eager under torch.autocast("cpu", dtype=torch.bfloat16): matmuls and convolutions in bf16,
                 parameters, gradients, momentum and the loss reductions in float32
  compile-bf16   torch.compile of the autocast forward and loss

Reads a JSON request on stdin:
  {"inputs": "<file.safetensors>", "side": "eager", "threads": T,
   "train": {"warmup": W, "runs": N} | null, "infer": {"warmup": W, "runs": N} | null}
Thread settings (OpenMP wait policy, pinning) come from the environment the bench sets; this script sets
`torch.set_num_threads(T)`. Writes one JSON object on stdout: versions and backends, the loss before every
training step, step times, the seconds of the first step (compilation for the compiled sides), the
process's peak RSS after training (KiB) and its RSS before the first step, and one-image inference times.
"""
import json
import resource
import sys
import time

import torch
import torch.nn.functional as F

from mlp_step import read_safetensors, timed
from segmenter import load_kappa, training_loss
from segmenter_mobilenet import model_of

SIDES = ("eager", "compile", "eager-bf16", "compile-bf16")


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def identity(threads):
    config = torch.__config__.show()
    blas = next((w.split("=")[1].rstrip(",") for w in config.split() if w.startswith("BLAS_INFO=")), "?")
    onednn = next((line.strip().lstrip("- ") for line in config.splitlines() if "MKL-DNN" in line), "none")
    torch.set_num_threads(threads)
    return {
        "torch": torch.__version__,
        "backend": f"BLAS {blas}; {onednn}; ATen CPU capability {torch.backends.cpu.get_cpu_capability()}",
        "torchThreads": torch.get_num_threads(),
    }


def autocast(side):
    """bf16 autocast for the -bf16 sides, a no-op context otherwise."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=side.endswith("-bf16"))


def train(c, tensors, side, req):
    model = model_of(c)
    load_kappa(model, tensors)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=c["lr"], momentum=c["momentum"])
    images, labels = tensors["images"], tensors["labels"].long()

    def loss_of(images, labels):
        with autocast(side):
            return training_loss(model, images, labels)

    forward = torch.compile(loss_of) if side.startswith("compile") else loss_of

    def step():
        loss = forward(images, labels)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    before = rss_kib()
    t0 = time.perf_counter()
    first = step()
    first_seconds = time.perf_counter() - t0
    losses, ms = timed(step, req["warmup"], req["runs"])
    return {
        "losses": [first, *losses],
        "stepMs": ms,
        "firstStepSeconds": first_seconds,
        "rssBeforeKiB": before,
        "peakRssKiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def infer(c, tensors, side, req):
    """One image, eval mode, no autograd: scores, selected classes and the rank logits."""
    model = model_of(c)
    load_kappa(model, tensors)
    model.eval()
    image = tensors["images"][:1].contiguous()

    def forward(x):
        with autocast(side):
            scores, selected, logits = model(x)
            upsampled = F.interpolate(logits.float(), size=x.shape[2:], mode="bilinear", align_corners=False)
            return torch.sigmoid(scores.float()), selected.gather(1, upsampled.argmax(1).reshape(1, -1))

    run = torch.compile(forward) if side.startswith("compile") else forward

    def once():
        with torch.no_grad():
            return run(image)

    _, ms = timed(once, req["warmup"], req["runs"])
    return {"inferMs": ms}


def main():
    req = json.load(sys.stdin)
    side = req["side"]
    if side not in SIDES:
        raise SystemExit(f"segmenter_torch2.py: side {side!r} is not one of {', '.join(SIDES)}")
    answer = identity(req["threads"])
    tensors, metadata = read_safetensors(req["inputs"])
    c = json.loads(metadata["config"])
    if req.get("train"):
        answer.update(train(c, tensors, side, req["train"]))
    if req.get("infer"):
        answer.update(infer(c, tensors, side, req["infer"]))
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
