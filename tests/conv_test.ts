/**
 * Grouped, depthwise and asymmetrically padded convolutions: forward values and both gradients against
 * a direct loop over the definition, SAME padding, relu6, and the group checks' messages.
 */
import { assertClose, assertEquals, assertThrowsMessage } from "./assert.ts";
import { runGraph } from "./graph_runner.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { grad } from "../ir/autodiff.ts";
import { value } from "../ir/value.ts";
import { sizeOf } from "../ir/dtype.ts";
import { random } from "../core/random.ts";
import { foldedDepthwiseWeightGrad, type PrimOf, RULES, tapDepthwiseWeightGrad } from "../ir/primitives.ts";

interface Geometry {
  strides: [number, number];
  pads: [number, number, number, number];
  dilations: [number, number];
  group: number;
}

/**
 * The definition, looped: y[n, o, i, j] = Σ_{c in o's group, a, b} x_pad[n, c, i·s + a·d, j·s + b·d] · w[o, c', a, b].
 * Also returns x̄ and w̄ for the loss Σ ȳ ⊙ y (the same loop, accumulated the other way).
 */
const referenceConv = (
  x: number[],
  [n, c, h, wd]: number[],
  w: number[],
  [oc, cg, kh, kw]: number[],
  { strides: [sh, sw], pads: [pt, pl, pb, pr], dilations: [dh, dw], group }: Geometry,
  ybar?: number[],
) => {
  const ho = Math.floor((h + pt + pb - (dh * (kh - 1) + 1)) / sh) + 1;
  const wo = Math.floor((wd + pl + pr - (dw * (kw - 1) + 1)) / sw) + 1;
  const y = new Array(n * oc * ho * wo).fill(0);
  const xbar = new Array(x.length).fill(0), wbar = new Array(w.length).fill(0);
  const og = oc / group;
  for (let b = 0; b < n; b++) {
    for (let o = 0; o < oc; o++) {
      for (let i = 0; i < ho; i++) {
        for (let j = 0; j < wo; j++) {
          const yi = ((b * oc + o) * ho + i) * wo + j;
          for (let ci = 0; ci < cg; ci++) {
            const ch = Math.floor(o / og) * cg + ci;
            for (let a = 0; a < kh; a++) {
              for (let q = 0; q < kw; q++) {
                const r = i * sh + a * dh - pt, s = j * sw + q * dw - pl;
                if (r < 0 || r >= h || s < 0 || s >= wd) continue;
                const xi = ((b * c + ch) * h + r) * wd + s, wi = ((o * cg + ci) * kh + a) * kw + q;
                y[yi] += x[xi] * w[wi];
                if (ybar) {
                  xbar[xi] += ybar[yi] * w[wi];
                  wbar[wi] += ybar[yi] * x[xi];
                }
              }
            }
          }
        }
      }
    }
  }
  return { y, shape: [n, oc, ho, wo], xbar, wbar };
};

/** Deterministic, non-symmetric values (no random generator needed for a few dozen numbers). */
const ramp = (length: number, scale: number, offset = 0) =>
  Array.from({ length }, (_, i) => Math.round((((i * 7 + 3) % 11) - 5 + offset) * scale * 100) / 100);

const f32 = (data: number[], shape: number[]) => value("float32", Float32Array.from(data), shape);

const checkConv = async (xShape: number[], wShape: number[], geometry: Geometry) => {
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const x = ramp(size(xShape), 0.3), w = ramp(size(wShape), 0.2, 1);
  const ref = referenceConv(x, xShape, w, wShape, geometry);
  const ybar = ramp(size(ref.shape), 0.1, 2);
  const { xbar, wbar } = referenceConv(x, xShape, w, wShape, geometry, ybar);
  const g = new Graph("t");
  const xt = o.input(g, "x", xShape), wt = o.input(g, "w", wShape), yb = o.input(g, "ybar", ref.shape);
  const y = o.conv(xt, wt, geometry);
  assertEquals(y.shape, ref.shape);
  const [gx, gw] = grad(o.sum(o.mul(y, yb)), [xt, wt]);
  g.output("y", y);
  g.output("gx", gx);
  g.output("gw", gw);
  const r = await runGraph(g, {
    x: f32(x, xShape),
    w: f32(w, wShape),
    ybar: f32(ybar, ref.shape),
  });
  assertClose(r.y, ref.y, { atol: 1e-5, message: "y" });
  assertClose(r.gx, xbar, { atol: 1e-5, message: "x̄" });
  assertClose(r.gw, wbar, { atol: 1e-5, message: "w̄" });
};

Deno.test("conv: group 2 forward and gradients match the looped definition", () =>
  checkConv([2, 4, 4, 5], [6, 2, 3, 3], {
    strides: [1, 1],
    pads: [1, 1, 1, 1],
    dilations: [1, 1],
    group: 2,
  }));

Deno.test("conv: depthwise stride 2 with SAME pads (0 top/left, 1 bottom/right) matches the definition", () =>
  checkConv([2, 3, 6, 6], [3, 1, 3, 3], {
    strides: [2, 2],
    pads: o.samePads([6, 6], [3, 3], [2, 2]),
    dilations: [1, 1],
    group: 3,
  }));

Deno.test("conv: depthwise with channel multiplier 2, dilation 2 and uneven pads matches the definition", () =>
  checkConv([1, 2, 7, 6], [4, 1, 3, 2], {
    strides: [1, 2],
    pads: [2, 0, 1, 1],
    dilations: [2, 2],
    group: 2,
  }));

Deno.test("conv: depthwise stride 1 with dilation and uneven pads (x̄ as a turned-kernel conv) matches", () =>
  checkConv([2, 3, 5, 6], [3, 1, 3, 3], {
    strides: [1, 1],
    pads: [2, 1, 0, 2],
    dilations: [2, 1],
    group: 3,
  }));

// 16 channels: a multiple of ONNX Runtime's NCHWc block on both CPU kinds (16 with AVX-512, 8 with AVX2),
// so on x86 these run on its NCHWc kernels (runtime/nchwc.ts), x̄ at stride 1 too (a depthwise conv).
Deno.test("conv: depthwise on NCHWc kernels, stride 1 and stride 2 with SAME pads, matches the definition", async () => {
  await checkConv([2, 16, 7, 6], [16, 1, 3, 3], {
    strides: [1, 1],
    pads: [1, 1, 1, 1],
    dilations: [1, 1],
    group: 16,
  });
  await checkConv([2, 16, 7, 8], [16, 1, 3, 3], {
    strides: [2, 2],
    pads: o.samePads([7, 8], [3, 3], [2, 2]),
    dilations: [1, 1],
    group: 16,
  });
});

// The weight gradient of these is itself a depthwise conv over batch × channels with a feature-map-sized
// kernel (dilated by the stride), which also runs on the NCHWc kernels.
Deno.test("conv: depthwise on NCHWc kernels with dilation, strides 2×1 and uneven pads matches the definition", async () => {
  await checkConv([2, 16, 7, 6], [16, 1, 3, 3], {
    strides: [1, 1],
    pads: [2, 1, 0, 2],
    dilations: [2, 1],
    group: 16,
  });
  await checkConv([2, 16, 7, 6], [16, 1, 3, 2], {
    strides: [2, 1],
    pads: [1, 2, 1, 0],
    dilations: [1, 2],
    group: 16,
  });
});

/** Seeded uniform values in [-1, 1). */
const noise = (length: number, seed: number) => {
  const rng = random(seed);
  return Array.from({ length }, () => rng.uniform() * 2 - 1);
};

Deno.test("conv: the folded depthwise w̄ equals the tap form's on random inputs (strides 1 and 2, m = 1 and 2)", async () => {
  const cases: [number[], number[], Geometry][] = [
    // MobileNetV2-like: 32 channels (NCHWc), stride 1 pad 1 and stride 2 SAME.
    [[4, 32, 14, 14], [32, 1, 3, 3], { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 32 }],
    [[4, 32, 14, 14], [32, 1, 3, 3], {
      strides: [2, 2],
      pads: o.samePads([14, 14], [3, 3], [2, 2]),
      dilations: [1, 1],
      group: 32,
    }],
    // Dilation and uneven pads; 3 channels (ORT's generic grouped Conv); channel multiplier 2.
    [[2, 16, 9, 8], [16, 1, 3, 3], { strides: [1, 1], pads: [2, 0, 1, 2], dilations: [2, 2], group: 16 }],
    [[2, 3, 9, 8], [3, 1, 3, 3], { strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 3 }],
    [[2, 3, 9, 8], [6, 1, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 1], group: 3 }],
  ];
  for (const [i, [xShape, wShape, geometry]] of cases.entries()) {
    const g = new Graph("t");
    const x = o.input(g, "x", xShape), w = o.input(g, "w", wShape);
    const y = o.conv(x, w, geometry);
    const ct = o.input(g, "ct", y.shape);
    const p = g.producer(y).prim as PrimOf<"conv">;
    g.output("folded", foldedDepthwiseWeightGrad(p, ct, o));
    g.output("taps", tapDepthwiseWeightGrad(p, ct, o));
    const r = await runGraph(g, {
      x: f32(noise(sizeOf(xShape), 1 + i), xShape),
      ct: f32(noise(sizeOf(y.shape), 100 + i), [...y.shape]),
    });
    const scale = Math.max(...r.taps.map(Math.abs));
    assertClose(r.folded, r.taps, { atol: 1e-5 * scale, message: `case ${i}` });
  }
});

Deno.test("conv: a hand-computed depthwise case (each channel its own 2×2 kernel)", async () => {
  const g = new Graph("t");
  // Two channels of a 2×3 image; channel 0's kernel sums the window, channel 1's takes its top-left.
  const x = o.input(g, "x", [1, 2, 2, 3]);
  const w = o.constant(g, [1, 1, 1, 1, 1, 0, 0, 0], [2, 1, 2, 2]);
  const y = g.output("y", o.conv(x, w, { group: 2 }));
  const r = await runGraph(g, { x: f32([1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60], [1, 2, 2, 3]) });
  assertEquals(r.y, [1 + 2 + 4 + 5, 2 + 3 + 5 + 6, 10, 20]);
  // 4 outputs, each 4 multiply-adds over its own channel only (not 2 channels × 4): 32 FLOPs.
  const node = g.producer(y);
  assertEquals(RULES.conv.flops(node.prim as PrimOf<"conv">, node.outputs), 32);
});

Deno.test("conv: samePads follows TensorFlow (odd padding at the end) and relu6 clips to [0, 6]", async () => {
  assertEquals(o.samePads([224, 224], [3, 3], [2, 2]), [0, 0, 1, 1]);
  assertEquals(o.samePads([225, 224], [3, 3], [2, 2]), [1, 0, 1, 1]);
  assertEquals(o.samePads([56, 56], [3, 3]), [1, 1, 1, 1]);
  assertEquals(o.samePads([7, 7], [1, 1], [2, 2]), [0, 0, 0, 0]);
  assertEquals(o.samePads([8, 8], [3, 3], [1, 1], [2, 2]), [2, 2, 2, 2]);
  const g = new Graph("t");
  const x = o.input(g, "x", [5]);
  g.output("y", o.relu6(x));
  const r = await runGraph(g, { x: f32([-1, 0.5, 3, 6, 7.5], [5]) });
  assertEquals(r.y, [0, 0.5, 3, 6, 6]);
});

Deno.test("conv: group mismatches name both shapes and the group", () => {
  const g = new Graph("t");
  const x = o.input(g, "x", [1, 6, 4, 4]);
  assertEquals(
    assertThrowsMessage(() => o.conv(x, o.input(g, "w", [4, 3, 3, 3]), { group: 3 }), "divisible"),
    "<root>: conv(f32[1,6,4,4], f32[4,3,3,3]): output channels 4 are not divisible by group 3",
  );
  assertThrowsMessage(
    () => o.conv(x, o.input(g, "w2", [6, 3, 3, 3]), { group: 3 }),
    "input channels 6 != weight input channels 3 × group 3",
  );
  assertThrowsMessage(
    () => o.conv(x, o.input(g, "w3", [8, 1, 3, 3]), { group: 4 }),
    "input channels 6 are not divisible by group 4",
  );
  assertThrowsMessage(
    () =>
      o.convTranspose(o.input(g, "y", [1, 6, 4, 4]), o.input(g, "w4", [6, 1, 1, 1]), {
        group: 4,
        size: [4, 4],
      }),
    "input channels 6 are not divisible by group 4",
  );
});
