/**
 * `deno task bench larvseg-bank [--max-classes N] [--steps S]`: the memory of LarvSeg's bank and the
 * training-step time with it as the vocabulary grows from ADE20K's 150 classes to ImageNet-21k's 21,841
 * (bench/vocab.ts's sizes), on the procedural generator's vocabulary. Writes BENCHMARKS.md's
 * "LarvSeg memory bank" section.
 *
 * The bank is [K, M, Kp, d] float32 state: at K = 21,841, d = 64 the paper's cross-image bank (M = Kp =
 * 20) holds 21,841 · 20 · 20 · 64 · 4 B = 2.24 GB (2.08 GiB), and the single-image variant (M = Kp = 1)
 * 5.6 MB. The step is a whole training step (forward, losses, backward, SGD update, bank update) of a
 * small segmenter with d = 64 on 64×64 crops, batch 2, with and without the attentive classifier.
 */
import { Effect } from "effect";
import * as m from "../dsl/model.ts";
import { sgdSpec, trainConfig } from "../dsl/training.ts";
import { trainingGraph } from "../interpret/graphs.ts";
import { optimizerConfig } from "../interpret/optimizer.ts";
import { IMAGE_LABELS, PIXEL_LABELLED } from "../interpret/segmenter.ts";
import { execute, graphStage, plan, type Value, value } from "../plan/runtime.ts";
import { random } from "../core/random.ts";
import { VOCABULARY } from "./vocab.ts";
import { recordSection, table } from "./markdown.ts";
import { flag } from "./grid_runs.ts";

const D = 64, SIZE = 64, BATCH = 2;

/** Bytes of the bank [K, M, Kp, d] (float32) plus its pointer and fill counter [K] each. */
export const bankBytes = (classes: number, slots: number, pixels: number, d = D): number =>
  4 * (classes * slots * pixels * d + 2 * classes);

const spec = (classes: number, variant: "none" | "crossImage" | "singleImage") =>
  m.larvSegmenter({
    classes,
    backbone: m.convNet({ widths: [16, 32, D] }),
    headDim: D,
    ...(variant === "none"
      ? { attentiveClassifier: undefined }
      : { attentiveClassifier: m.attentiveClassifier({ variant, labelsPerImage: 8 }) }),
  });

/** Mean ms of `steps` training steps after one warm-up, for K classes and one bank variant. */
const stepMs = (classes: number, variant: "none" | "crossImage" | "singleImage", steps: number) =>
  Effect.scoped(Effect.gen(function* () {
    const t = trainConfig({ steps: 100, batchSize: BATCH, optimizer: sgdSpec({ lr: 1e-3 }) });
    const g = trainingGraph(spec(classes, variant), {
      batch: BATCH,
      height: SIZE,
      width: SIZE,
      trainSize: [SIZE, SIZE],
    }, optimizerConfig(t));
    const ex = yield* execute(plan("bank", g, [graphStage(g, { name: "train" })]), { seed: 0 });
    const rng = random(1);
    const plane = SIZE * SIZE;
    // Three present classes per image, spread over the vocabulary; pixels labelled with them.
    const present = [0, 1].map((b) => [0, 1, 2].map((j) => (b * 7919 + j * 104729) % classes));
    const labels = new Int32Array(BATCH * plane).map((_, i) => present[Math.floor(i / plane)][i % 3]);
    const multiHot = new Float32Array(BATCH * classes);
    present.forEach((cs, b) => cs.forEach((c) => (multiHot[b * classes + c] = 1)));
    const feeds = (step: number): Record<string, Value> => ({
      images: value("float32", Float32Array.from({ length: BATCH * 3 * plane }, () => rng.normal()), [
        BATCH,
        3,
        SIZE,
        SIZE,
      ]),
      labels: value("int32", labels, [BATCH, SIZE, SIZE]),
      lr: value("float32", Float32Array.of(1e-3), []),
      step: value("float32", Float32Array.of(step), []),
      [IMAGE_LABELS]: value("float32", multiHot, [BATCH, classes]),
      [PIXEL_LABELLED]: value("float32", Float32Array.of(1, 1), [BATCH]),
    });
    yield* ex.run(feeds(1));
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) yield* ex.run(feeds(s + 2));
    return (performance.now() - t0) / steps;
  }));

export const main = async (_args: string[]) => {
  const maxClasses = Number(flag("max-classes") ?? 21841);
  const steps = Number(flag("steps") ?? 5);
  const sizes = VOCABULARY.filter((k) => k <= maxClasses);
  const rows: { k: number; none: number; single: number; cross: number }[] = [];
  for (const k of sizes) {
    const [none, single, cross] = [
      await Effect.runPromise(stepMs(k, "none", steps)),
      await Effect.runPromise(stepMs(k, "singleImage", steps)),
      await Effect.runPromise(stepMs(k, "crossImage", steps)),
    ];
    rows.push({ k, none, single, cross });
    console.error(`K=${k}: ${none.toFixed(1)} / ${single.toFixed(1)} / ${cross.toFixed(1)} ms`);
  }
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(3)} GiB`;
  const first = rows[0];
  const body = [
    `Produced by \`npx --yes deno@2.9.6 task bench larvseg-bank --max-classes ${maxClasses} --steps ${steps}\` ` +
    `on ${new Date().toISOString().slice(0, 10)} (${navigator.hardwareConcurrency} cores, shared). ` +
    `A training step of a small LarvSeg segmenter (d = ${D}, ${SIZE}×${SIZE} crops, batch ${BATCH}), mean of ${steps} ` +
    "steps after one warm-up.",
    "",
    `Bank memory at K = 21,841, d = ${D}: cross-image (M = K = 20) ${gib(bankBytes(21841, 20, 20))}, ` +
    `single-image (M = K = 1) ${gib(bankBytes(21841, 1, 1))}. The bank is plan state that each run takes ` +
    "in and returns as a `next:` output, so on the CPU provider the cross-image bank is copied in and out " +
    "every step (ONNX Runtime copies every output).",
    "",
    table(
      [
        { header: "K", cell: (r: typeof first) => r.k.toLocaleString("en-US") },
        { header: "no bank (ms)", cell: (r) => r.none.toFixed(1) },
        { header: "single-image bank (ms)", cell: (r) => r.single.toFixed(1) },
        { header: "cross-image bank (ms)", cell: (r) => r.cross.toFixed(1) },
        { header: "cross-image bank size", cell: (r) => gib(bankBytes(r.k, 20, 20)) },
        { header: "cross / cross at K = 150", cell: (r) => `${(r.cross / first.cross).toFixed(2)}×` },
      ],
      rows,
      "plain",
    ),
  ];
  await recordSection("BENCHMARKS.md", "LarvSeg memory bank", body.join("\n"));
  console.log(body.join("\n"));
};
