"""The MobileNetV2 segmenter of `deno task bench perf --model=mobilenet` in PyTorch: segmenter.py's heads
(ξ, top-κ selection, ψ mask transformer, rank-adaptive τ, losses) on a MobileNetV2 backbone written to
match kappa's layers/mobilenet_v2.ts op for op:

  stem 3×3 stride-2 conv → ReLU6; inverted residual blocks 1..17 (expand 1×1 → ReLU6, depthwise 3×3 →
  ReLU6, project 1×1, the input added back when stride 1 keeps the width); every conv carries its folded
  BatchNorm as a bias (no normalization layer); TensorFlow SAME padding (a stride-2 conv of an even size
  pads bottom and right only), applied as an explicit F.pad before an unpadded conv; output stride 16 or 8
  as DeepLab does it (a downsampling block past the output stride keeps stride 1 and every later depthwise
  conv dilates by the stride given up). The c5 map (320 channels) becomes the pixel tokens, un-normalized.

Parameter names are kappa's (`backbone.blocks.{i}.{expand,depthwise,project}.conv.{weight,bias}`), so
segmenter.py's `load_kappa` loads every parameter from the bench's file (conv weights are [out, in/group,
k, k] on both sides; the backbone's come from the ImageNet safetensors through kappa's importer).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from segmenter import Psi, RankSegmenter, Temperature, Xi

# (expansion t, channels c, repeats n, stride s), as torchvision's and kappa's tables.
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
C5_BLOCK = 17


def make_divisible(v, divisor=8):
    rounded = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * v else rounded


def same_pads(size, kernel, stride, dilation):
    """[top, left, bottom, right] of TensorFlow's SAME padding (kappa's `samePads`)."""
    pads = []
    for n in size:
        span = dilation * (kernel - 1) + 1
        out = math.ceil(n / stride)
        pads.append(max((out - 1) * stride + span - n, 0))
    begin = [p // 2 for p in pads]
    return begin[0], begin[1], pads[0] - begin[0], pads[1] - begin[1]


class ConvUnit(nn.Module):
    """Conv (folded BatchNorm as its bias) → ReLU6 unless it is a linear projection."""

    def __init__(self, cin, out, kernel, stride=1, dilation=1, group=1, relu6=True, padding="same"):
        super().__init__()
        self.conv = nn.Conv2d(cin, out, kernel, stride=stride, dilation=dilation, groups=group, bias=True)
        self.kernel, self.stride, self.dilation, self.relu6, self.padding = kernel, stride, dilation, relu6, padding

    def forward(self, x):
        if self.padding == "same":
            top, left, bottom, right = same_pads(x.shape[2:], self.kernel, self.stride, self.dilation)
        else:
            top = left = bottom = right = (self.kernel - 1) // 2 * self.dilation
        if top or left or bottom or right:
            x = F.pad(x, (left, right, top, bottom))
        y = self.conv(x)
        return F.relu6(y) if self.relu6 else y


class InvertedResidual(nn.Module):
    def __init__(self, cin, out, expansion, stride, dilation, padding):
        super().__init__()
        hidden = round(cin * expansion)
        self.expand = ConvUnit(cin, hidden, 1, padding=padding) if expansion != 1 else None
        self.depthwise = ConvUnit(hidden, hidden, 3, stride, dilation, group=hidden, padding=padding)
        self.project = ConvUnit(hidden, out, 1, relu6=False, padding=padding)
        self.residual = stride == 1 and cin == out

    def forward(self, x):
        h = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(h))
        return x + y if self.residual else y


class MobileNetV2(nn.Module):
    """The c5 map of kappa's MobileNetV2 as pixel tokens [b, h·w, 320] and their grid."""

    def __init__(self, b):
        super().__init__()
        width, output_stride, padding = b["widthMultiplier"], b["outputStride"], b["padding"]
        cin = make_divisible(32 * width)
        self.stem = ConvUnit(3, cin, 3, 2, padding=padding)
        blocks = {}
        stride, dilation, index = 2, 1, 1
        for t, c, n, s in SETTINGS:
            for r in range(n):
                if index > C5_BLOCK:
                    break
                wants = s if r == 0 else 1
                keeps = wants > 1 and stride == output_stride
                block_stride, block_dilation = (1 if keeps else wants), dilation
                if keeps:
                    dilation *= wants
                else:
                    stride *= wants
                out = make_divisible(c * width)
                blocks[str(index)] = InvertedResidual(cin, out, t, block_stride, block_dilation, padding)
                cin, index = out, index + 1
        self.blocks = nn.ModuleDict(blocks)
        self.channels = cin

    def forward(self, images):
        h = self.stem(images)
        for block in self.blocks.values():
            h = block(h)
        b, c, gh, gw = h.shape
        return h.reshape(b, c, gh * gw).transpose(1, 2), (gh, gw)


class MobileNetSegmenter(RankSegmenter):
    """segmenter.py's RankSegmenter with the MobileNetV2 backbone in place of the ViT."""

    def __init__(self, c):
        nn.Module.__init__(self)
        self.c = c
        self.backbone = MobileNetV2(c["backbone"])
        self.proj = nn.Linear(self.backbone.channels, c["headDim"])
        self.xi = Xi(c)
        self.psi = Psi(c)
        self.temperature = Temperature(c["kappa"])

    def forward(self, images):
        tokens, grid = self.backbone(images)
        pixels = self.proj(tokens)
        scores, features = self.xi(pixels, grid)
        selected = scores.topk(self.c["kappa"], dim=1).indices
        b, k, d = features.shape[0], selected.shape[1], features.shape[2]
        chosen = torch.gather(features, 1, selected.unsqueeze(2).expand(b, k, d))
        logits = self.temperature(self.psi(pixels, chosen))
        return scores, selected, logits.transpose(1, 2).reshape(b, k, *grid)


def model_of(c):
    """The model the bench's file describes: the MobileNetV2 segmenter, or segmenter.py's ViT one."""
    if c.get("backbone", {}).get("kind") == "MobileNetV2":
        return MobileNetSegmenter(c)
    return RankSegmenter(c)
