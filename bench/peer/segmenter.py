"""PyTorch peer of `deno task bench perf`: the same Segmenter + RankSeg model in eager PyTorch.

Reads a JSON request on stdin:
  {"inputs": "<file.safetensors>", "threads": T,
   "train": {"warmup": W, "runs": N} | null, "infer": {"warmup": W, "runs": N} | null}
The safetensors file (bench/segmenter_model.ts `peerInputs`) holds kappa's initial parameters under
kappa's names (linear weights stored [in, out]), the training batch "images" / "labels", and the model's
settings as JSON in the metadata entry "config". The model below mirrors kappa's layers/*.ts:

  ViT (no class token; patch embedding = stride-p convolution; learned position embeddings; pre-norm
  blocks, LayerNorm eps from the spec; q scaled before q·kᵀ; exact GELU) → final LayerNorm → proj (linear)
  → ξ: one pre-norm block over [adaptive-avg-pooled tokens (pool×pool) ; K class embeddings] → LayerNorm
       → group-wise linear (K scores); the LayerNorm'ed class outputs are the class features
  → top-κ of the scores (sorted) → the selected class features, gathered per image
  → ψ: pre-norm blocks over [pixel tokens ; selected class features] → LayerNorm → patch / class
       projections (d×d, no bias) → L2 normalization → cosine logits [b, n, κ]
  → τ: logits · exp(−θ_r) per rank r → logits [b, κ, h, w].
Training loss: bilinear upsampling to the label size, cross-entropy on rank targets (a pixel whose class
is not among the κ selected is ignored), plus the asymmetric multi-label loss on ξ's scores (weighted).
SGD with momentum (torch.optim.SGD), no weight decay. Heads' LayerNorms use eps 1e-5.

Writes one JSON object on stdout: versions, BLAS, thread counts, the loss before every training step,
step times, inference times for one image, and the inference outputs for that image.
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from mlp_step import pin_threads, read_safetensors, timed

HEAD_EPS = 1e-5


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, d = x.shape
        dh = d // self.heads
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, dh).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        weights = ((q * dh**-0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((weights @ v).transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm: x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim, heads, mlp_ratio, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, round(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, grid = c["dim"], c["size"] // c["patch"]
        self.patchEmbed = nn.Conv2d(3, d, c["patch"], stride=c["patch"])
        self.posEmbed = nn.Parameter(torch.zeros(1, grid * grid, d))
        self.blocks = nn.ModuleList(
            Block(d, c["heads"], c["mlpRatio"], c["backboneEps"]) for _ in range(c["depth"])
        )
        self.norm = nn.LayerNorm(d, eps=c["backboneEps"])

    def forward(self, images):
        x = self.patchEmbed(images).flatten(2).transpose(1, 2) + self.posEmbed  # [b, n, d]
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class GroupWiseLinear(nn.Module):
    """score_c = <W_c, e_c> + b_c."""

    def __init__(self, classes, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(classes, dim))
        self.bias = nn.Parameter(torch.zeros(classes))

    def forward(self, e):
        return (e * self.weight).sum(-1) + self.bias


class Xi(nn.Module):
    """RankSeg's multi-label head: scores [b, K] and class features [b, K, d]."""

    def __init__(self, c):
        super().__init__()
        d, k = c["headDim"], c["classes"]
        self.pool = c["xi"]["pool"]
        self.classEmbed = nn.Parameter(torch.zeros(k, d))
        self.block = Block(d, c["xi"]["heads"], c["xi"]["mlpRatio"], HEAD_EPS)
        self.norm = nn.LayerNorm(d, eps=HEAD_EPS)
        self.fc = GroupWiseLinear(k, d)

    def forward(self, pixels, grid):
        b, n, d = pixels.shape
        pooled = F.adaptive_avg_pool2d(pixels.transpose(1, 2).reshape(b, d, *grid), self.pool)
        pooled = pooled.flatten(2).transpose(1, 2)  # [b, pool², d]
        tokens = torch.cat([pooled, self.classEmbed.expand(b, -1, -1)], 1)
        features = self.norm(self.block(tokens)[:, self.pool * self.pool :])
        return self.fc(features), features


class Psi(nn.Module):
    """Segmenter's mask transformer over [pixel tokens ; κ class features]: cosine logits [b, n, κ]."""

    def __init__(self, c):
        super().__init__()
        d = c["headDim"]
        p = c["psi"]
        self.blocks = nn.ModuleList(Block(d, p["heads"], p["mlpRatio"], HEAD_EPS) for _ in range(p["layers"]))
        self.norm = nn.LayerNorm(d, eps=HEAD_EPS)
        self.projPatch = nn.Parameter(torch.zeros(d, d))
        self.projClasses = nn.Parameter(torch.zeros(d, d))

    def forward(self, pixels, classes):
        n = pixels.shape[1]
        x = torch.cat([pixels, classes], 1)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        patches = F.normalize(x[:, :n] @ self.projPatch, dim=-1)
        cls = F.normalize(x[:, n:] @ self.projClasses, dim=-1)
        return patches @ cls.transpose(1, 2)


class Temperature(nn.Module):
    """Rank-adaptive τ_r = exp(θ_r)."""

    def __init__(self, kappa):
        super().__init__()
        self.logTau = nn.Parameter(torch.zeros(kappa))

    def forward(self, logits):
        return logits * torch.exp(-self.logTau)


class RankSegmenter(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.backbone = ViT(c)
        self.proj = nn.Linear(c["dim"], c["headDim"])
        self.xi = Xi(c)
        self.psi = Psi(c)
        self.temperature = Temperature(c["kappa"])

    def forward(self, images):
        """Scores [b, K], selected classes [b, κ] (best first), rank logits [b, κ, h, w]."""
        grid = (images.shape[2] // self.c["patch"], images.shape[3] // self.c["patch"])
        pixels = self.proj(self.backbone(images))
        scores, features = self.xi(pixels, grid)
        selected = scores.topk(self.c["kappa"], dim=1).indices
        b, k, d = features.shape[0], selected.shape[1], features.shape[2]
        chosen = torch.gather(features, 1, selected.unsqueeze(2).expand(b, k, d))
        logits = self.temperature(self.psi(pixels, chosen))
        return scores, selected, logits.transpose(1, 2).reshape(b, k, *grid)


def load_kappa(model, tensors):
    """Loads kappa's parameters: "model." prefix dropped, linear weights [in, out] → [out, in]."""
    linears = {f"{name}.weight" for name, mod in model.named_modules() if isinstance(mod, nn.Linear)}
    c = model.c
    state = {}
    for name, t in tensors.items():
        if not name.startswith("model."):
            continue
        key = name[len("model.") :]
        if key in linears:
            t = t.t()
        elif key == "backbone.patchEmbed.weight":  # [c·p·p, d], (channel, row, column) → conv [d, c, p, p]
            t = t.t().reshape(c["dim"], 3, c["patch"], c["patch"])
        state[key] = t.contiguous()
    model.load_state_dict(state, strict=True)


def presence(labels, classes, ignore):
    """[b, K] float: 1 where the class occurs (ignored pixels excluded)."""
    flat = labels.reshape(labels.shape[0], -1)
    safe = torch.where(flat == ignore, torch.full_like(flat, classes), flat)
    present = torch.zeros(flat.shape[0], classes + 1).scatter_(1, safe, 1.0)
    return present[:, :classes]


def rank_targets(labels, selected, classes, ignore):
    """A pixel of class c gets the rank r with selected[r] = c, else the ignore index."""
    b, k = selected.shape
    table = torch.full((b, classes + 1), ignore, dtype=torch.long)
    table.scatter_(1, selected, torch.arange(k).expand(b, k))
    flat = labels.reshape(b, -1)
    safe = torch.where(flat == ignore, torch.full_like(flat, classes), flat)
    return table.gather(1, safe).reshape(labels.shape)


def asymmetric_loss(logits, targets, a):
    p = torch.sigmoid(logits)
    q = (1 - p + a["clip"]).clamp(max=1) if a["clip"] > 0 else 1 - p
    loss = targets * torch.log(p.clamp(min=a["eps"])) + (1 - targets) * torch.log(q.clamp(min=a["eps"]))
    if a["gammaPos"] > 0 or a["gammaNeg"] > 0:
        pt = targets * p + (1 - targets) * q
        gamma = targets * a["gammaPos"] + (1 - targets) * a["gammaNeg"]
        weight = torch.pow(1 - pt, gamma)
        loss = loss * (weight.detach() if a["detachFocusing"] else weight)
    return -loss.sum() / logits.numel()


def training_loss(model, images, labels):
    c = model.c
    scores, selected, logits = model(images)
    targets = rank_targets(labels, selected, c["classes"], c["ignoreIndex"])
    upsampled = F.interpolate(logits, size=labels.shape[1:], mode="bilinear", align_corners=False)
    pixel = F.cross_entropy(upsampled, targets, ignore_index=c["ignoreIndex"])
    multi = asymmetric_loss(scores, presence(labels, c["classes"], c["ignoreIndex"]), c["asl"])
    return c["pixelLossWeight"] * pixel + c["asl"]["weight"] * multi


def train(c, tensors, req):
    model = RankSegmenter(c)
    load_kappa(model, tensors)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=c["lr"], momentum=c["momentum"])
    images, labels = tensors["images"], tensors["labels"].long()

    def step():
        loss = training_loss(model, images, labels)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    return timed(step, req["warmup"], req["runs"])


def infer(c, tensors, req):
    """One image, eval mode, no autograd: the outputs of kappa's exported model for it."""
    model = RankSegmenter(c)
    load_kappa(model, tensors)
    model.eval()
    image = tensors["images"][:1].contiguous()
    k, ignore_logit = c["kappa"], -100.0

    def once():
        with torch.no_grad():
            scores, selected, logits = model(image)
            b, _, h, w = logits.shape
            full = torch.full((b, c["classes"], h, w), ignore_logit)
            full.scatter_(1, selected.reshape(b, k, 1, 1).expand(b, k, h, w), logits)
            upsampled = F.interpolate(logits, size=image.shape[2:], mode="bilinear", align_corners=False)
            rank = upsampled.argmax(1).reshape(b, -1)
            classes = selected.gather(1, rank).reshape(b, *image.shape[2:])
            return torch.sigmoid(scores), selected, full, classes

    results, ms = timed(once, req["warmup"], req["runs"])
    scores, selected, full, classes = results[-1]
    outputs = {
        "scores": scores.flatten().tolist(),
        "selected": selected.flatten().tolist(),
        "logits": full.flatten().tolist(),
        "classes": classes.flatten().tolist(),
    }
    return ms, outputs


def main():
    req = json.load(sys.stdin)
    answer = pin_threads(req["threads"])
    tensors, metadata = read_safetensors(req["inputs"])
    c = json.loads(metadata["config"])
    if req.get("train"):
        t0 = time.perf_counter()
        losses, step_ms = train(c, tensors, req["train"])
        answer.update(losses=losses, stepMs=step_ms, trainSeconds=time.perf_counter() - t0)
    if req.get("infer"):
        infer_ms, outputs = infer(c, tensors, req["infer"])
        answer.update(inferMs=infer_ms, outputs=outputs)
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
