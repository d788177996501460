import { Effect } from "effect";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assert, assertClose, assertEquals } from "./assert.ts";
import { encodeSafetensors, type Tensor } from "../io/safetensors.ts";
import { foldBatchNorm } from "../weights/fold_batch_norm.ts";
import { importWeights, type WeightsError } from "../weights/import.ts";
import { MOBILENET_V2_TORCHVISION } from "../weights/mobilenet_v2_names.ts";
import { matchTemplate, ruleFor } from "../weights/name_table.ts";

Deno.test("foldBatchNorm: hand-computed case with real statistics", () => {
  // Two output channels, filters [1, 2] and [3, 4]. var + ε = 4 and 0.25, so √ = 2 and 0.5;
  // s = γ/√ = 3/2 = 1.5 and 2/0.5 = 4.
  const bn = { gamma: [3, 2], beta: [1, -1], mean: [0.5, 2], variance: [4 - 1e-5, 0.25 - 1e-5] };
  const folded = foldBatchNorm([1, 2, 3, 4], bn);
  assertClose(folded.weight, [1.5, 3, 12, 16]);
  // b' = β − mean·s: 1 − 0.5·1.5 = 0.25; −1 − 2·4 = −9.
  assertClose(folded.bias, [0.25, -9]);
  // With a conv bias b: b' = β + (b − mean)·s: 1 + 0.5·1.5 = 1.75; −1 + (1 − 2)·4 = −5.
  assertClose(foldBatchNorm([1, 2, 3, 4], bn, { bias: [1, 1] }).bias, [1.75, -5]);
});

Deno.test("foldBatchNorm equals conv then BatchNorm on a 1×1 conv", () => {
  // A 1×1 conv of a 3-channel pixel x is w·x; BatchNorm then maps channel c to γ(y − μ)/√(σ² + ε) + β.
  const w = [0.3, -1.2, 2.0, 0.7, 0.1, -0.4];
  const bn = { gamma: [1.7, -0.6], beta: [0.2, 1.1], mean: [0.9, -0.3], variance: [2.5, 0.04] };
  const x = [0.5, -2, 1.25];
  const y = [0, 1].map((c) => w.slice(3 * c, 3 * c + 3).reduce((s, wi, i) => s + wi * x[i], 0));
  const expected = y.map((v, c) =>
    bn.gamma[c] * (v - bn.mean[c]) / Math.sqrt(bn.variance[c] + 1e-5) + bn.beta[c]
  );
  const f = foldBatchNorm(w, bn);
  const actual = [0, 1].map((c) =>
    f.weight.slice(3 * c, 3 * c + 3).reduce((s, wi, i) => s + wi * x[i], 0) + f.bias[c]
  );
  assertClose(actual, expected, { atol: 1e-5 });
});

Deno.test("name templates bind the same number on both sides; special cases win by order", () => {
  assertEquals(matchTemplate("backbone.blocks.{i}.expand.conv", "backbone.blocks.12.expand.conv"), {
    i: "12",
  });
  assertEquals(matchTemplate("backbone.blocks.{i}.expand.conv", "backbone.blocks.x.expand.conv"), undefined);
  assertEquals(ruleFor(MOBILENET_V2_TORCHVISION, "backbone.blocks.1.project.conv"), {
    kind: "convBatchNorm",
    to: "backbone.blocks.1.project.conv",
    conv: "features.1.conv.1",
    batchNorm: "features.1.conv.2",
  });
  assertEquals(ruleFor(MOBILENET_V2_TORCHVISION, "backbone.blocks.7.project.conv"), {
    kind: "convBatchNorm",
    to: "backbone.blocks.7.project.conv",
    conv: "features.7.conv.2",
    batchNorm: "features.7.conv.3",
  });
});

// A miniature model in MobileNetV2's layout: stem conv (4 channels), block 1's depthwise conv, classifier.
const f32 = (shape: number[], values?: number[]): Tensor => ({
  dtype: "F32",
  shape,
  data: Float32Array.from(
    values ?? Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i / 10),
  ),
});
const batchNorm = (
  prefix: string,
  channels: number,
  gamma = 1,
  variance = 1 - 1e-5,
): Record<string, Tensor> => ({
  [`${prefix}.weight`]: f32([channels], Array(channels).fill(gamma)),
  [`${prefix}.bias`]: f32([channels], Array.from({ length: channels }, (_, c) => c - 1)),
  [`${prefix}.running_mean`]: f32([channels], Array(channels).fill(0)),
  [`${prefix}.running_var`]: f32([channels], Array(channels).fill(variance)),
  [`${prefix}.num_batches_tracked`]: { dtype: "I64", shape: [], data: new BigInt64Array([0n]) },
});
const miniFile = (): Record<string, Tensor> => ({
  "features.0.0.weight": f32([4, 3, 3, 3]),
  ...batchNorm("features.0.1", 4),
  "features.1.conv.0.0.weight": f32([4, 1, 3, 3]),
  ...batchNorm("features.1.conv.0.1", 4, 2, 4 - 1e-5),
  "classifier.1.weight": f32([2, 4], [1, 2, 3, 4, 5, 6, 7, 8]),
  "classifier.1.bias": f32([2], [0.5, -0.5]),
});
const miniModel = new Map<string, number[]>([
  ["backbone.stem.conv.weight", [4, 3, 3, 3]],
  ["backbone.stem.conv.bias", [4]],
  ["backbone.blocks.1.depthwise.conv.weight", [4, 1, 3, 3]],
  ["backbone.blocks.1.depthwise.conv.bias", [4]],
  ["classifier.weight", [4, 2]],
  ["classifier.bias", [2]],
]);

const withFile = async (contents: Uint8Array | string, body: (file: string) => Promise<void>) => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-weights-"));
  try {
    const file = join(dir, "weights.safetensors");
    await writeFile(file, contents);
    await body(file);
  } finally {
    await rm(dir, { recursive: true });
  }
};

const importError = (file: string, model = miniModel, unused: string[] = []) =>
  Effect.runPromise(
    Effect.flip(importWeights(file, MOBILENET_V2_TORCHVISION, model, { unused })),
  ) as Promise<WeightsError>;

Deno.test("importWeights folds BatchNorm into convs and transposes the classifier to [in, out]", async () => {
  await withFile(encodeSafetensors(miniFile()), async (file) => {
    const values = await Effect.runPromise(importWeights(file, MOBILENET_V2_TORCHVISION, miniModel));
    assertEquals([...values.keys()].sort(), [...miniModel.keys()].sort());
    // Identity BatchNorm (γ 1, mean 0, var 1 − ε): the weight is unchanged and the bias is β.
    const stem = values.get("backbone.stem.conv.weight")!;
    assertEquals(stem.shape, [4, 3, 3, 3]);
    assertClose(stem.data.slice(0, 3), [0, 0.1, 0.2]);
    assertClose(values.get("backbone.stem.conv.bias")!.data, [-1, 0, 1, 2]);
    // γ 2, var 4 − ε: s = 1, so the depthwise weight stays too; mean 0 leaves the bias β.
    assertClose(values.get("backbone.blocks.1.depthwise.conv.weight")!.data.slice(9, 11), [0.9, 1.0]);
    // torchvision [out, in] = [[1,2,3,4],[5,6,7,8]] → kappa [in, out].
    assertEquals(values.get("classifier.weight")!.shape, [4, 2]);
    assertClose(values.get("classifier.weight")!.data, [1, 5, 2, 6, 3, 7, 4, 8]);
    assertClose(values.get("classifier.bias")!.data, [0.5, -0.5]);
  });
});

Deno.test("importWeights lists every missing, unexpected and mis-shaped key in one error", async () => {
  const tensors = miniFile();
  delete tensors["features.0.1.running_var"];
  tensors["features.19.0.weight"] = f32([8, 4, 1, 1]);
  tensors["features.1.conv.0.0.weight"] = f32([4, 1, 5, 5]);
  await withFile(encodeSafetensors(tensors), async (file) => {
    const e = await importError(file);
    assertEquals(e.problems, [
      "features.0.1.running_var: missing (backbone.stem.conv.bias [4] needs it)",
      "features.1.conv.0.0.weight: shape [4,1,5,5] in the file, [4,1,3,3] expected for " +
      "backbone.blocks.1.depthwise.conv.weight",
      "features.19.0.weight: unexpected [8,4,1,1] (no parameter of the model takes it)",
    ]);
    assert(
      e.message.startsWith(`${file}: does not fit the model as torchvision MobileNetV2 (3 problems):\n`),
    );
    assertEquals(e.message.split("\n").length, 4);
  });
});

Deno.test("importWeights refuses a narrower (width 0.5) file key by key, with both shapes", async () => {
  const half: Record<string, Tensor> = {
    "features.0.0.weight": f32([2, 3, 3, 3]),
    ...batchNorm("features.0.1", 2),
    "features.1.conv.0.0.weight": f32([2, 1, 3, 3]),
    ...batchNorm("features.1.conv.0.1", 2),
    "classifier.1.weight": f32([2, 2]),
    "classifier.1.bias": f32([2]),
  };
  await withFile(encodeSafetensors(half), async (file) => {
    const e = await importError(file);
    assertEquals(e.problems.length, 11);
    assertEquals(
      e.problems[0],
      "features.0.0.weight: shape [2,3,3,3] in the file, [4,3,3,3] expected for backbone.stem.conv.weight",
    );
    assertEquals(
      e.problems[1],
      "features.0.1.weight: shape [2] in the file, [4] expected for backbone.stem.conv.bias",
    );
    assertEquals(
      e.problems[10],
      "classifier.1.weight: shape [2,2] in the file, [2,4] expected for classifier.weight",
    );
  });
});

Deno.test("importWeights: a backbone-only model names the classifier as unused or refuses it", async () => {
  const backboneOnly = new Map([...miniModel].filter(([k]) => k.startsWith("backbone.")));
  await withFile(encodeSafetensors(miniFile()), async (file) => {
    assertEquals((await importError(file, backboneOnly)).problems, [
      "classifier.1.bias: unexpected [2] (no parameter of the model takes it)",
      "classifier.1.weight: unexpected [2,4] (no parameter of the model takes it)",
    ]);
    const values = await Effect.runPromise(
      importWeights(file, MOBILENET_V2_TORCHVISION, backboneOnly, { unused: ["classifier."] }),
    );
    assertEquals(values.size, 4);
  });
});

Deno.test("importWeights: a model parameter no rule fills is reported", async () => {
  const model = new Map([...miniModel, ["backbone.neck.conv.weight", [4, 4, 1, 1]]]);
  await withFile(encodeSafetensors(miniFile()), async (file) => {
    assertEquals((await importError(file, model)).problems, [
      "backbone.neck.conv.weight: the model has this parameter but no rule of the torchvision MobileNetV2 table fills it",
    ]);
  });
});

Deno.test("importWeights: a file that is not safetensors, or does not exist, is one clear error", async () => {
  await withFile("this is a text file, not safetensors\n", async (file) => {
    const e = await importError(file);
    assert(e.message.startsWith(`${file}: not a valid safetensors file (header length `), e.message);
    assertEquals(e.message.split("\n").length, 1);
  });
  const json = new TextEncoder().encode('{"a": 1}');
  const badHeader = new Uint8Array(8 + json.length);
  new DataView(badHeader.buffer).setBigUint64(0, BigInt(json.length), true);
  badHeader.set(json, 8);
  await withFile(badHeader, async (file) => {
    const e = await importError(file);
    assert(e.message.startsWith(`${file}: not a valid safetensors file (tensor "a": bad entry`), e.message);
  });
  const missing = join(tmpdir(), "kappa-no-such-dir", "mobilenet.safetensors");
  assertEquals((await importError(missing)).message, `${missing}: weights file does not exist`);
});
