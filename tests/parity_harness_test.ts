/**
 * The parity harness on its own (no Python needed): name tables map strictly and report every problem
 * at once, layouts move PyTorch tensors into kappa's, and a difference beyond tolerance fails naming the
 * component.
 */
import { assert, assertEquals, assertThrowsMessage } from "./assert.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { linear } from "../layers/linear.ts";
import { layerNorm } from "../layers/norm.ts";
import { mapParameters, type NameTable, toKappaLayout } from "../parity/names.ts";
import type { Reference, RefTensor } from "../parity/reference_data.ts";
import { closeRow, difference, exactRow } from "../parity/compare.ts";
import { describeFailures } from "../parity/run.ts";

/** A reference holding `tensors` (as reference.py would write them). */
const fakeReference = (tensors: Record<string, RefTensor>): Reference => ({
  method: "rankseg",
  torch: "test",
  cases: {},
  has: (n) => n in tensors,
  get: (n) => tensors[n],
  floats: (n) => tensors[n].data as Float64Array,
  ints: (n) => Array.from(tensors[n].data as BigInt64Array, Number),
  under: (p) => Object.keys(tensors).filter((k) => k.startsWith(p)).map((k) => k.slice(p.length)),
});
const t = (shape: number[], data?: number[]): RefTensor => ({
  shape,
  data: Float64Array.from(data ?? Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i)),
});

Deno.test("layouts: nn.Linear [out, in] and a 1×1 conv transpose to [in, out]; q/k/v parts; 'same' squeezes", () => {
  const rule = { to: "a.", from: "b.", layout: "torch" } as const;
  assertEquals(
    Array.from(toKappaLayout(Float64Array.from([1, 2, 3, 4, 5, 6]), [2, 3], [3, 2], rule) as Float64Array),
    [
      1,
      4,
      2,
      5,
      3,
      6,
    ],
  );
  assertEquals(
    Array.from(
      toKappaLayout(Float64Array.from([1, 2, 3, 4, 5, 6]), [2, 3, 1, 1], [3, 2], rule) as Float64Array,
    ),
    [1, 4, 2, 5, 3, 6],
  );
  // in_proj_weight [3·2, 1]: the k part is rows 2..3.
  const packed = Float64Array.from([1, 2, 3, 4, 5, 6]);
  assertEquals(Array.from(toKappaLayout(packed, [6, 1], [1, 2], { ...rule, part: [1, 3] }) as Float64Array), [
    3,
    4,
  ]);
  assertEquals(Array.from(toKappaLayout(packed, [6], [2], { ...rule, part: [2, 3] }) as Float64Array), [
    5,
    6,
  ]);
  const same = { to: "a", from: "b", layout: "same" } as const;
  assertEquals(toKappaLayout(packed, [1, 3, 2], [3, 2], same), packed);
  assertEquals(
    toKappaLayout(packed, [1, 3, 2], [2, 3], same),
    "shape mismatch: official [1,3,2] → kappa [2,3]",
  );
});

Deno.test("name tables: every unmapped variable, missing, mis-shaped and left-over tensor is reported at once", () => {
  const g = new Graph("t");
  const x = o.input(g, "x", [1, 4]);
  const y = g.scope("head", () => layerNorm(linear(x, 3, { name: "fc" }), { name: "norm" }));
  g.output("y", o.add(y, g.scope("extra", () => o.variable(g, "scale", [3], { _tag: "ones" }))));
  const ref = fakeReference({
    "c.param.fc.weight": t([4, 3]), // transposed it would be [3, 4]: mis-shaped
    "c.param.fc.bias": t([3]),
    "c.param.norm.weight": t([3]),
    "c.param.stray": t([2]),
  });
  const table: NameTable = {
    name: "test table",
    rules: [
      { to: "head.fc.", from: "fc.", layout: "torch" },
      { to: "head.norm.", from: "norm.", layout: "torch" },
    ],
  };
  const message = assertThrowsMessage(() => mapParameters(g, ref, "c.param.", table), "test table");
  assertEquals(message.split("\n").slice(1).map((l) => l.trim()).sort(), [
    "extra.scale: no rule of test table maps it",
    "head.fc.weight ← fc.weight: shape mismatch: official [4,3] → kappa [4,3]",
    'head.norm.bias: official tensor "norm.bias" is missing',
    "stray: official tensor that no kappa variable takes (and not listed as unused)",
  ]);
  // Declared exceptions are accepted.
  const ok = fakeReference({
    "c.param.fc.weight": t([3, 4]),
    "c.param.fc.bias": t([3]),
    "c.param.norm.weight": t([3]),
    "c.param.norm.bias": t([3]),
    "c.param.stray": t([2]),
  });
  const { values, mapped } = mapParameters(g, ok, "c.param.", {
    ...table,
    unused: { stray: "not a parameter of this piece" },
    kappaOnly: { "extra.scale": "kappa's own" },
  });
  assertEquals(mapped.map((m) => m.kappa).sort(), [
    "head.fc.bias",
    "head.fc.weight",
    "head.norm.bias",
    "head.norm.weight",
  ]);
  assertEquals(Array.from(values.get("head.fc.weight")!).slice(0, 4), [0, 4, 8, 1]); // [out=3, in=4] → [4, 3]
});

Deno.test("comparisons: relative to the tensor's magnitude; analytic zeros against the row; NaN fails", () => {
  assertEquals(difference([1, 2.002], [1, 2]), {
    maxAbs: 0.0019999999999997797,
    rel: 0.0009999999999998899,
    at: 1,
  });
  assertEquals(difference([0, 0], [0, 0]).rel, 0);
  assertEquals(difference([1e-9], [0]).rel, Infinity);
  assertEquals(difference([NaN, 1], [1, 1]).rel, Infinity);
  const row = closeRow("RankSeg", "head", "gradients", [
    { name: "w", kappa: [10, -4], official: [10, -4] },
    { name: "key bias", kappa: [3e-6], official: [1e-15], zero: "softmax shift" },
  ], 1e-6);
  assertEquals(row.maxRel, (3e-6 - 1e-15) / 10);
  assert(row.passed);
});

Deno.test("a difference beyond tolerance fails, naming the method, component and what was compared", () => {
  const rows = [
    closeRow("kMaX-DeepLab", "mask-ID cross-entropy (loss_mask)", "loss", [{
      name: "l",
      kappa: [1.001],
      official: [1],
    }], 2e-5),
    exactRow("RankSeg", "Segmenter + RankSeg", "top-κ classes, best first", [3, 1, 2], [3, 2, 1]),
    closeRow("LarvSeg", "ok", "fine", [{ name: "v", kappa: [1], official: [1] }], 2e-5),
  ];
  assertEquals(describeFailures(rows), [
    "kMaX-DeepLab · mask-ID cross-entropy (loss_mask) · loss: max rel 1.00e-3 > 2e-5 (max |Δ| 1.00e-3)",
    "RankSeg · Segmenter + RankSeg · top-κ classes, best first: 2 of 3 differ; first at 1: kappa 1, official 2",
  ]);
});
