"""The official code's side of kappa's parity checks (parity/): builds the official RankSeg and
kMaX-DeepLab modules through the shims in ../shared/reference (imported at run time, never copied),
runs them on fixed, seeded inputs and writes their parameters, inputs, outputs, losses and gradients
to one safetensors file per method, with the configuration of every case in its metadata.

    python reference.py --method rankseg --out DIR [--reference ../shared/reference]
    python reference.py --method kmax --out DIR

RankSeg runs in float64 (the reference values are then exact to ~1e-15) and once more in float32 from
the same weights (`<case>.f32.*`: PyTorch's own float32 rounding, the noise floor of the comparison).
kMaX runs in float32: it casts to float32 inside its autocast blocks (README of ../shared/reference).
The two methods run in separate processes because both shims install their own stand-in `timm`.

Every parameter is perturbed away from its initial value (LayerNorm weights from 1, biases from 0), so
that a name mapped to the wrong tensor cannot go unnoticed. Forward-only modules are differentiated
through a probe: L = sum(w * out) with a fixed random w of the output's shape (`<case>.probe.<out>`).

Tensor names: `<case>.param.<state_dict key>`, `<case>.input.<name>`, `<case>.out.<name>`,
`<case>.grad.param.<key>`, `<case>.grad.input.<name>` (and `<case>.f32.` before `out`/`grad` for the
float32 run).
"""
import argparse
import importlib.util
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # keep ../shared/reference free of __pycache__

HERE = os.path.dirname(os.path.abspath(__file__))


# ---------------------------------------------------------------------------------------------------
# Output: a safetensors file (the format is 8 bytes of header length, a JSON header, the raw bytes)

DTYPES = {np.float64: "F64", np.float32: "F32", np.int64: "I64"}


class Store:
    def __init__(self):
        self.tensors = {}
        self.cases = {}

    def put(self, name, t):
        a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
        if a.dtype == np.int32 or a.dtype == np.bool_:
            a = a.astype(np.int64)
        if a.dtype.type not in DTYPES:
            raise TypeError(f"{name}: unsupported dtype {a.dtype}")
        if name in self.tensors:
            raise KeyError(f"{name}: written twice")
        self.tensors[name] = np.ascontiguousarray(a)

    def case(self, name, **config):
        self.cases[name] = config

    def write(self, path, metadata):
        header, offset, chunks = {}, 0, []
        # Widest dtype first, then by name: every tensor starts at a multiple of its element size.
        for name in sorted(self.tensors, key=lambda n: (-self.tensors[n].itemsize, n)):
            a = self.tensors[name]
            data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
            header[name] = {"dtype": DTYPES[a.dtype.type], "shape": list(a.shape),
                            "data_offsets": [offset, offset + len(data)]}
            chunks.append(data)
            offset += len(data)
        header["__metadata__"] = {"cases": json.dumps(self.cases), **metadata}
        text = json.dumps(header).encode()
        text += b" " * (-(8 + len(text)) % 8)
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for c in chunks:
                f.write(c)


def load_shim(reference, method):
    """Imports ../shared/reference/<method>/shim.py under a name of its own and returns its load()."""
    path = os.path.join(reference, method, "shim.py")
    spec = importlib.util.spec_from_file_location(f"{method}_shim", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def perturb(module, seed, scale=0.1):
    """Moves every parameter off its initial value by scale·N(0, 1), seeded."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype))


def randn(seed, *shape, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(*shape, generator=g, dtype=torch.float64)


def put_params(store, case, module):
    for k, v in module.state_dict().items():
        store.put(f"{case}.param.{k}", v)


def put_grads(store, prefix, module, inputs):
    for k, p in module.named_parameters():
        store.put(f"{prefix}.grad.param.{k}", p.grad if p.grad is not None else torch.zeros_like(p))
    for k, x in inputs.items():
        store.put(f"{prefix}.grad.input.{k}", x.grad)


def zero_grads(module, inputs):
    module.zero_grad(set_to_none=True)
    for x in inputs.values():
        x.grad = None


# ---------------------------------------------------------------------------------------------------
# RankSeg

K, KAPPA = 11, 5  # classes, top-κ
C_IN, D, HEADS, D_FF = 12, 16, 2, 32  # backbone width, head width, heads, MLP width
H = W = 8  # feature grid
POOL = 4  # ξ's pooled grid (downsample)
LABEL = 32  # label size (4 × the feature grid, as mmseg's stride-4 logits against full-size labels)


def labels_for(seed, k=K):
    """(1, 1, 32, 32) int64: classes 0..k-1 in 4×4 blocks (so that several classes fall outside top-κ),
    a 255 (ignore) band on top."""
    g = torch.Generator().manual_seed(seed)
    blocks = torch.randint(0, k, (1, 1, LABEL // 4, LABEL // 4), generator=g)
    lab = blocks.repeat_interleave(4, 2).repeat_interleave(4, 3)
    lab[:, :, :3, :] = 255
    return lab


def run_both(store, case, module, inputs, fn, wrt=("x",)):
    """Runs fn(module, inputs) → {name: output}, differentiates its scalar "loss" (a loss, or the probe
    of an output) with respect to the parameters and the inputs named in `wrt`, in float64 then
    float32; stores outputs and gradients of both."""
    for dtype in (torch.float64, torch.float32):
        m = module.to(dtype)
        xs = {k: v.detach().to(dtype).requires_grad_(k in wrt) for k, v in inputs.items()}
        zero_grads(m, {})
        outs = fn(m, xs)
        prefix = case if dtype == torch.float64 else f"{case}.f32"
        for k, v in outs.items():
            store.put(f"{prefix}.out.{k}", v.detach().to(torch.float64) if v.is_floating_point() else v)
        loss = outs["loss"]
        loss.backward()
        put_grads(store, prefix, m, {k: v for k, v in xs.items() if v.requires_grad})
    module.to(torch.float64)


def probe_loss(store, case, outs, names, seed):
    """L = Σ w ⊙ out over the named outputs, w fixed per case (stored once, in float64)."""
    total = 0
    for i, n in enumerate(names):
        key = f"{case}.probe.{n}"
        if key not in store.tensors:
            store.put(key, randn(seed + i, *outs[n].shape))
        w = torch.from_numpy(store.tensors[key]).to(outs[n].dtype)
        total = total + (w * outs[n]).sum()
    return total


def rankseg(store, reference):
    shim = load_shim(reference, "rankseg")
    m = shim.load()
    torch.set_default_dtype(torch.float64)

    # ---- multi-label losses: logits spread so that p < eps (clamped log) and p < clip (q = 1) occur
    logits = randn(1, 3, K, scale=3.0)
    logits[0, 0], logits[1, 1], logits[2, 2] = -14.0, 13.0, -4.0
    target = (randn(2, 3, K) > 0.3).double()
    target[0, 0], target[1, 1] = 1.0, 0.0
    losses = {
        "asl-2-0": (m.AsymmetricLoss(gamma_neg=2, gamma_pos=0), dict(gammaNeg=2, gammaPos=0, clip=0.05)),
        "asl-0-0": (m.AsymmetricLoss(gamma_neg=0, gamma_pos=0), dict(gammaNeg=0, gammaPos=0, clip=0.05)),
        "asl-4-1": (m.AsymmetricLoss(), dict(gammaNeg=4, gammaPos=1, clip=0.05)),
        "asl-2-0-detach": (m.AsymmetricLoss(gamma_neg=2, gamma_pos=0, disable_torch_grad_focal_loss=True),
                           dict(gammaNeg=2, gammaPos=0, clip=0.05, detachFocusing=True)),
        "bce": (m.BCELoss(), dict()),
    }
    for case, (loss, config) in losses.items():
        store.case(case, kind="multiLabelLoss", loss="bce" if case == "bce" else "asl", **config)
        store.put(f"{case}.input.logits", logits)
        store.put(f"{case}.input.target", target)
        run_both(store, case, loss, {"logits": logits, "target": target},
                 lambda mod, xs: {"loss": mod(xs["logits"], xs["target"])}, wrt=("logits",))

    # ---- GroupWiseLinear
    case = "groupwise-linear"
    torch.manual_seed(10)
    gwl = m.GroupWiseLinear(K, D)
    perturb(gwl, 10)
    store.case(case, kind="groupWiseLinear", classes=K, dim=D)
    put_params(store, case, gwl)
    x = randn(11, 2, K, D)
    store.put(f"{case}.input.x", x)

    def gwl_fn(mod, xs):
        out = mod(xs["x"])
        return {"scores": out, "loss": probe_loss(store, case, {"scores": out}, ["scores"], 12)}
    run_both(store, case, gwl, {"x": x}, gwl_fn)

    # ---- ξ (a): one transformer block over [pooled tokens ; class embeddings] (RankSegEncoderHead)
    case = "xi-encoder"
    torch.manual_seed(20)
    xi = m.RankSegEncoderHead(num_classes=K, d_encoder=C_IN, hidden_dim=D, n_heads=HEADS, d_ff=D_FF,
                              dropout=0.0, share_embedding=False, downsample=POOL, orig=True)
    perturb(xi, 20)
    store.case(case, kind="xiEncoder", classes=K, inChannels=C_IN, dim=D, heads=HEADS, mlp=D_FF, pool=POOL,
               grid=[H, W])
    put_params(store, case, xi)
    x = randn(21, 2, C_IN, H, W)
    store.put(f"{case}.input.x", x)

    def xi_fn(mod, xs):
        out = mod(xs["x"])
        return {"scores": out, "loss": probe_loss(store, case, {"scores": out}, ["scores"], 22)}
    run_both(store, case, xi, {"x": x}, xi_fn)

    # ---- ξ (b): Query2Label decoder (RankSegDecoderHead) over a pooled 4×4 grid
    case = "xi-decoder"
    torch.manual_seed(30)
    q2l = m.RankSegDecoderHead(input_dim=C_IN, hidden_dim=D, size=POOL, num_class=K, dropout=0.0,
                               nhead=HEADS, dim_feedforward=D_FF)
    perturb(q2l, 30)
    store.case(case, kind="xiDecoder", classes=K, inChannels=C_IN, dim=D, heads=HEADS, mlp=D_FF, pool=POOL,
               layers=2)
    put_params(store, case, q2l)
    x = randn(31, 2, C_IN, POOL, POOL)
    store.put(f"{case}.input.x", x)

    def q2l_fn(mod, xs):
        out = mod(xs["x"])
        return {"scores": out, "loss": probe_loss(store, case, {"scores": out}, ["scores"], 32)}
    run_both(store, case, q2l, {"x": x}, q2l_fn)

    # ---- ξ (c): global average pool (the GAP head MaskTransformerRankSegDecoderHead builds)
    case = "xi-gap"
    torch.manual_seed(40)
    gap_head = m.MaskTransformerRankSegDecoderHead(
        n_cls=K, patch_size=4, d_encoder=C_IN, n_layers=1, n_heads=HEADS, d_model=D, d_ff=D_FF,
        drop_path_rate=0.0, dropout=0.0, topk_cls=KAPPA, img_loss_weight=5, downsample=POOL,
        img_cls_head=dict(type="RankSegGlobalPoolingHead"))
    gap = gap_head.img_cls_head
    perturb(gap, 40)
    store.case(case, kind="xiGap", classes=K, inChannels=C_IN, grid=[H, W])
    put_params(store, case, gap)
    x = randn(41, 2, C_IN, H, W)
    store.put(f"{case}.input.x", x)

    def gap_fn(mod, xs):
        out = mod(xs["x"]).flatten(1)
        return {"scores": out, "loss": probe_loss(store, case, {"scores": out}, ["scores"], 42)}
    run_both(store, case, gap, {"x": x}, gap_fn)

    # ---- RA: the rank LayerNorm over κ rank-ordered logits (the heads' `mask_norm`)
    case = "rank-layernorm"
    torch.manual_seed(50)
    ln = torch.nn.LayerNorm(KAPPA)
    perturb(ln, 50)
    store.case(case, kind="rankLayerNorm", k=KAPPA)
    put_params(store, case, ln)
    x = randn(51, 2, H * W, KAPPA, scale=0.3)  # cosine logits are in [-1, 1]
    store.put(f"{case}.input.x", x)

    def ln_fn(mod, xs):
        out = mod(xs["x"])
        return {"logits": out, "loss": probe_loss(store, case, {"logits": out}, ["logits"], 52)}
    run_both(store, case, ln, {"x": x}, ln_fn)

    # ---- The full heads, train mode, one image per forward (the official Segmenter heads need B = 1)
    def head_case(case, head, images, label_seeds, config):
        """Runs `head` on each image separately (B = 1): outputs, losses, the rank targets and upsampled
        logits its mmseg loss saw, and the gradients of loss_img + loss_seg."""
        store.case(case, **config, images=len(images))
        put_params(store, case, head)
        captured = {}
        decode = head.loss_decode

        class Capture(torch.nn.Module):
            def forward(self, seg_logit, label, **kw):
                captured["seg_logit"], captured["rank_targets"] = seg_logit, label
                return decode(seg_logit, label, **kw)
        head.loss_decode = Capture()
        for i, (x, seed) in enumerate(zip(images, label_seeds)):
            lab = labels_for(seed)
            store.put(f"{case}.{i}.input.x", x)
            store.put(f"{case}.{i}.input.labels", lab)
            for dtype in (torch.float64, torch.float32):
                h = head.to(dtype)
                h.train()
                xs = {"x": x.detach().to(dtype).requires_grad_(True)}
                zero_grads(h, {})
                img_pred, topk_index, masks = h(xs["x"])
                losses = h.losses((img_pred, topk_index, masks), lab)
                total = losses["loss_img"] + losses["loss_seg"]
                total.backward()
                prefix = f"{case}.{i}" if dtype == torch.float64 else f"{case}.{i}.f32"
                outs = {"scores": img_pred.flatten(1), "masks": masks, "loss_img": losses["loss_img"],
                        "loss_seg": losses["loss_seg"], "seg_logit": captured["seg_logit"]}
                for k, v in outs.items():
                    store.put(f"{prefix}.out.{k}", v.detach().to(torch.float64))
                store.put(f"{prefix}.out.topk_index", topk_index)
                store.put(f"{prefix}.out.rank_targets", captured["rank_targets"])
                put_grads(store, prefix, h, xs)
        head.loss_decode = decode
        head.to(torch.float64)

    # (a) Segmenter + RankSeg with ξ fused into decoder block 0 (MaskTransformerRankSegHead, the main
    #     configs), ASL(2, 0) × 10
    torch.manual_seed(60)
    fused = m.MaskTransformerRankSegHead(
        n_cls=K, patch_size=4, d_encoder=C_IN, n_layers=3, n_heads=HEADS, d_model=D, d_ff=D_FF,
        drop_path_rate=0.0, dropout=0.0, topk_cls=KAPPA, img_loss_weight=10, downsample=POOL,
        loss_img=dict(type="AsymmetricLoss", gamma_neg=2, gamma_pos=0))
    fused.init_weights()
    perturb(fused, 60)
    head_case("segmenter-fused", fused, [randn(61, 1, C_IN, H, W), randn(62, 1, C_IN, H, W)], [63, 64],
              dict(kind="segmenterFused", classes=K, inChannels=C_IN, dim=D, heads=HEADS, mlp=D_FF, pool=POOL,
                   k=KAPPA, layers=3, grid=[H, W], label=[LABEL, LABEL],
                   multiLabelLoss=dict(loss="asl", gammaNeg=2, gammaPos=0, clip=0.05, weight=10)))

    # (b) Segmenter + RankSeg with a separate GAP ξ (MaskTransformerRankSegDecoderHead), BCE × 5. Its ξ
    #     reads the backbone features and ψ their projection proj_dec; proj_dec is set to the identity
    #     (d_encoder = d_model) so that both read the same tokens, as kappa's ξ and ψ do.
    torch.manual_seed(70)
    sep = m.MaskTransformerRankSegDecoderHead(
        n_cls=K, patch_size=4, d_encoder=D, n_layers=2, n_heads=HEADS, d_model=D, d_ff=D_FF,
        drop_path_rate=0.0, dropout=0.0, topk_cls=KAPPA, img_loss_weight=5, downsample=POOL,
        img_cls_head=dict(type="RankSegGlobalPoolingHead"), loss_img=dict(type="BCELoss"))
    sep.init_weights()
    perturb(sep, 70)
    with torch.no_grad():
        sep.proj_dec.weight.copy_(torch.eye(D))
        sep.proj_dec.bias.zero_()
    head_case("segmenter-gap", sep, [randn(71, 1, D, H, W), randn(72, 1, D, H, W)], [73, 74],
              dict(kind="segmenterGap", classes=K, dim=D, heads=HEADS, mlp=D_FF, k=KAPPA, layers=2,
                   grid=[H, W], label=[LABEL, LABEL], multiLabelLoss=dict(loss="bce", weight=5)))
    return dict(torch=torch.__version__, numpy=np.__version__)


# ---------------------------------------------------------------------------------------------------
# kMaX-DeepLab (float32)

KM_K, KM_N, KM_H, KM_W = 7, 6, 8, 8  # classes (+ void), queries, mask grid


def panoptic_targets(seed, b, counts, h=KM_H, w=KM_W, k=KM_K):
    """Per image: `counts[i]` disjoint segments from a random map (a void band on top, two segments of
    one class in image 1), as the official targets (list of dicts) and kappa's padded layout."""
    g = torch.Generator().manual_seed(seed)
    official, masks, classes, semantic = [], [], [], []
    m_max = max(counts)
    for i in range(b):
        seg = torch.randint(0, counts[i], (h, w), generator=g)
        seg[0, :] = -1
        labels = torch.randperm(k, generator=g)[:counts[i]]
        if i == 1 and counts[i] >= 3:
            labels[2] = labels[1]  # two masks of one class (e.g. two instances of a thing)
        mk = torch.stack([(seg == j).float() for j in range(counts[i])])
        sem = torch.full((h, w), -1, dtype=torch.int64)
        for j in range(counts[i]):
            sem[seg == j] = labels[j]
        official.append({"labels": labels, "masks": mk, "semantic_masks": sem})
        pad = torch.zeros(m_max, h * w)
        pad[:counts[i]] = mk.flatten(1)
        masks.append(pad)
        classes.append(torch.cat([labels, torch.full((m_max - counts[i],), k, dtype=torch.int64)]))
        semantic.append(torch.where(sem < 0, torch.tensor(255), sem).flatten())
    return official, torch.stack(masks), torch.stack(classes), torch.stack(semantic)


def kmax(store, reference):
    shim = load_shim(reference, "kmax")
    k = shim.load()

    # ---- the k-means cross-attention of one kMaX layer: assignment = argmax over clusters of the
    #      layer's own mask logits (one-hot, detached), update = Σ_p A[n, p] · V[:, p]
    case = "kmeans"
    torch.manual_seed(100)
    layer = k.kMaXTransformerLayer(num_classes=KM_K + 1, in_channel_pixel=16, in_channel_query=16,
                                   base_filters=128, num_heads=8, drop_path_prob=0.0)
    perturb(layer, 100, scale=0.02)
    layer.train()
    seen = {}
    layer._pixel_v_conv_bn.register_forward_hook(lambda mod, i, o: seen.__setitem__("values", o))
    layer._kmeans_query_batch_norm_retrieved_value.register_forward_hook(
        lambda mod, i, o: seen.__setitem__("update", i[0]))
    pixels, queries = randn(101, 2, 16, KM_H, KM_W).float(), randn(102, 2, 16, KM_N).float()
    with torch.no_grad():
        _, pred = layer(pixels, queries)
    b, c = seen["values"].shape[:2]
    store.case(case, kind="kmeans", queries=KM_N, pixels=KM_H * KM_W, valueDim=c)
    store.put(f"{case}.input.mask_logits", pred["mask_logits"].flatten(2))  # [b, N, P]
    store.put(f"{case}.input.values", seen["values"].reshape(b, c, -1).transpose(1, 2))  # [b, P, C]
    store.put(f"{case}.out.update", seen["update"].transpose(1, 2))  # [b, N, C]
    store.put(f"{case}.out.assignment", pred["mask_logits"].flatten(2).argmax(1))  # [b, P]

    # ---- the void prior of the class logits
    case = "void-prior"
    logits = randn(103, 2, KM_N, KM_K + 1).float()
    store.case(case, kind="voidPrior", prior=0.9)
    store.put(f"{case}.input.logits", logits)
    store.put(f"{case}.out.logits", k.add_bias_towards_void(logits))

    # ---- Hungarian matching: the cost −dice × p(class) and the assignment (scipy), two images with
    #      5 and 3 ground-truth masks, 8 queries
    case = "matcher"
    n = 8
    official, masks, classes, _ = panoptic_targets(110, 2, [5, 3])
    pred_logits = randn(111, 2, n, KM_K + 1, scale=2.0).float()
    pred_masks = randn(112, 2, n, KM_H, KM_W, scale=3.0).float()
    indices, m_dice, m_cls = k.HungarianMatcher(masking_void_pixel=True)(
        {"pred_logits": pred_logits, "pred_masks": pred_masks}, official)
    store.case(case, kind="matcher", classes=KM_K, queries=n, masks=[5, 3], grid=[KM_H, KM_W])
    store.put(f"{case}.input.class_logits", pred_logits)
    store.put(f"{case}.input.mask_logits", pred_masks.flatten(2))
    store.put(f"{case}.input.gt_masks", masks)
    store.put(f"{case}.input.gt_classes", classes)
    costs = torch.zeros(2, n, masks.shape[1])
    index = torch.full((2, n), -1, dtype=torch.int64)
    for i, t in enumerate(official):
        # The matcher's cost, from its own similarity functions (it does not return the matrix).
        sim = k.compute_mask_similarity(pred_masks[i].flatten(1), t["masks"].flatten(1))
        cls = k.compute_class_similarity(pred_logits[i], t["labels"])
        costs[i, :, :len(t["labels"])] = -sim * cls
        rows, cols = indices[i]
        index[i, rows] = cols
        store.put(f"{case}.out.matched_dice.{i}", m_dice[i])
        store.put(f"{case}.out.matched_class_prob.{i}", m_cls[i])
        store.put(f"{case}.out.rows.{i}", rows)
    store.put(f"{case}.out.costs", costs)
    store.put(f"{case}.out.index", index)

    # ---- the losses (SetCriterion): PQ-style class and dice terms, mask-ID cross-entropy, auxiliary
    #      semantic cross-entropy (sample_k = 0: every pixel), unweighted, each with its gradients
    case = "criterion"
    official, masks, classes, semantic = panoptic_targets(120, 2, [4, 3])
    pred_logits = randn(121, 2, KM_N, KM_K + 1, scale=2.0).float().requires_grad_(True)
    pred_masks = randn(122, 2, KM_N, KM_H, KM_W, scale=3.0).float().requires_grad_(True)
    semantic_logits = randn(123, 2, KM_K, KM_H, KM_W, scale=2.0).float().requires_grad_(True)
    matcher = k.HungarianMatcher(masking_void_pixel=True)
    crit = k.SetCriterion(KM_K, matcher=matcher, weight_dict={}, eos_coef=1e-5,
                          losses=["labels", "masks", "aux_semantic"], share_final_matching=True,
                          aux_semantic_sample_k=0, masking_void_pixel=True)
    outs = {"pred_logits": pred_logits, "pred_masks": pred_masks, "aux_semantic_pred": semantic_logits}
    losses = crit(outs, official)
    store.case(case, kind="criterion", classes=KM_K, queries=KM_N, masks=[4, 3], grid=[KM_H, KM_W],
               losses=sorted(losses))
    store.put(f"{case}.input.class_logits", pred_logits)
    store.put(f"{case}.input.mask_logits", pred_masks.flatten(2))
    store.put(f"{case}.input.semantic_logits", semantic_logits.flatten(2))
    store.put(f"{case}.input.gt_masks", masks)
    store.put(f"{case}.input.gt_classes", classes)
    store.put(f"{case}.input.semantic_labels", semantic)
    for name, value in losses.items():
        store.put(f"{case}.out.{name}", value)
        grads = torch.autograd.grad(value, [pred_logits, pred_masks, semantic_logits], retain_graph=True,
                                    allow_unused=True)
        for input_name, gr, x in zip(["class_logits", "mask_logits", "semantic_logits"], grads,
                                     [pred_logits, pred_masks, semantic_logits]):
            gr = torch.zeros_like(x) if gr is None else gr
            store.put(f"{case}.grad.{name}.{input_name}", gr.flatten(2))

    # ---- panoptic post-processing (mask-wise merging): the smoke's hand-made case, and two cases of
    #      planted segments with confident and unconfident classes, overlaps and same-class stuff
    case = "merge"
    things = [0, 1, 2, 3]
    cases = []
    g = torch.Generator().manual_seed(130)
    for j in range(3):
        n = KM_N if j == 0 else 10
        mask_cls = torch.full((n, KM_K + 1), -4.0) + 0.1 * torch.randn(n, KM_K + 1, generator=g)
        mask_pred = torch.randn(n, KM_H, KM_W, generator=g)
        if j == 0:  # ../shared/reference/kmax/smoke.py's synthetic case
            for q, c in [(0, 1), (1, 1), (2, 5), (3, 5), (5, KM_K)]:
                mask_cls[q, c] = 4.0
            mask_cls[4, 2] = -3.0
            for q, (r0, r1, c0, c1) in enumerate([(0, 2, 0, 8), (2, 4, 0, 8), (4, 6, 0, 8), (6, 8, 0, 4),
                                                  (6, 8, 4, 8)]):
                mask_pred[q, r0:r1, c0:c1] += 8.0
        else:
            for q in range(n):
                c = int(torch.randint(0, KM_K + 1, (1,), generator=g))
                mask_cls[q, c] = float(torch.empty(1).uniform_(-1.0, 6.0, generator=g))
                r0, c0 = (int(v) for v in torch.randint(0, 6, (2,), generator=g))
                hh, ww = (int(v) for v in torch.randint(1, 4, (2,), generator=g))
                mask_pred[q, r0:r0 + hh, c0:c0 + ww] += float(torch.empty(1).uniform_(2.0, 9.0, generator=g))
        mask_cls, mask_pred = mask_cls.float(), mask_pred.float()
        pan, info = k.panoptic_inference(shim.panoptic_self(thing_ids=things), mask_cls, mask_pred)
        store.put(f"{case}.{j}.input.class_logits", mask_cls)
        store.put(f"{case}.{j}.input.mask_logits", mask_pred.flatten(1))
        store.put(f"{case}.{j}.out.ids", pan.flatten())
        cases.append({"queries": n, "segments": info})
    store.case(case, kind="merge", classes=KM_K, things=things, grid=[KM_H, KM_W], cases=cases)
    return dict(torch=torch.__version__, numpy=np.__version__)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--method", choices=["rankseg", "kmax"], required=True)
    p.add_argument("--out", required=True, help="folder for <method>.safetensors")
    p.add_argument("--reference", default=os.path.join(HERE, "..", "..", "..", "shared", "reference"))
    a = p.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    store = Store()
    versions = (rankseg if a.method == "rankseg" else kmax)(store, os.path.abspath(a.reference))
    store.write(os.path.join(a.out, f"{a.method}.safetensors"), versions)


if __name__ == "__main__":
    main()
