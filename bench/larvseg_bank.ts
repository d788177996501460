/**
 * `deno task bench larvseg-bank [--max-classes N] [--steps S] [--threads T] [--size S]`: the memory of
 * LarvSeg's bank and the training-step time with it as the vocabulary grows from ADE20K's 150 classes to
 * ImageNet-21k's 21,841 (bench/vocab.ts's sizes), on the procedural generator's vocabulary, with the
 * pixel loss at the label size, at half of it (LarvSeg's official `downsample_rate` 2) and at feature
 * resolution (`pixelLossDownsample`). Writes BENCHMARKS.md's "LarvSeg memory bank" section.
 *
 * The bank is [K, M, Kp, d] float32 state: at K = 21,841, d = 64 the paper's cross-image bank (M = Kp =
 * 20) holds 21,841 · 20 · 20 · 64 · 4 B = 2.24 GB (2.08 GiB), and the single-image variant (M = Kp = 1)
 * 5.6 MB. The step is a whole training step (bank read on the host, forward, losses, backward, SGD
 * update, bank write on the host) of a small segmenter with d = 64 on 64×64 crops, batch 2, with and
 * without the attentive classifier; the fastest of S steps after one warm-up (on a machine other
 * processes share, the fastest step is the one they disturbed least; medians moved by ±50 % between runs
 * here). The bank's host stages are timed on their own too.
 */
import { Effect } from "effect";
import * as m from "../mod.ts";
import {
  execute,
  type Graph,
  IMAGE_LABELS,
  optimizerConfig,
  PIXEL_LABELLED,
  plan,
  sgdSpec,
  trainConfig,
  trainingStages,
  type Value,
  value,
} from "../mod.ts";
import { liveNodes, random, type Stage } from "../profiling.ts";
import { VOCABULARY } from "./vocab.ts";
import { recordSection, table } from "../figures/markdown.ts";
import { flag } from "../figures/flags.ts";
import { thisCpu } from "../figures/cpu.ts";

const D = 64, BATCH = 2;
/** The bench model's backbone stride (three stride-2 stages): r = STRIDE is the loss at feature resolution. */
const STRIDE = 8;

/** Bytes of the bank [K, M, Kp, d] (float32) plus its pointer and fill counter [K] each. */
export const bankBytes = (classes: number, slots: number, pixels: number, d = D): number =>
  4 * (classes * slots * pixels * d + 2 * classes);

const spec = (classes: number, variant: "none" | "crossImage" | "singleImage", downsample: number) =>
  m.larvSegmenter({
    classes,
    backbone: m.convNet({ widths: [16, 32, D] }),
    headDim: D,
    ...(downsample === 1 ? {} : { pixelLossDownsample: downsample }),
    ...(variant === "none"
      ? { attentiveClassifier: undefined }
      : { attentiveClassifier: m.attentiveClassifier({ variant, labelsPerImage: 8 }) }),
  });

/** A host stage whose run time is added to `ms` (graph stages as they are). */
const timed = (stage: Stage, ms: number[]): Stage =>
  stage._tag === "GraphStage" ? stage : {
    ...stage,
    run: (env) =>
      Effect.suspend(() => {
        const t0 = performance.now();
        return stage.run(env).pipe(Effect.tap(() => Effect.sync(() => ms.push(performance.now() - t0))));
      }),
  };

/** The fastest of the samples (0 when none). */
const fastest = (xs: readonly number[]) => (xs.length === 0 ? 0 : Math.min(...xs));

interface StepTime {
  /** The fastest step, ms. */
  readonly step: number;
  /** The bank's host stages (read + write) in their fastest step, ms; 0 without a bank. */
  readonly bank: number;
  /** Elements of every tensor the training graph computes per step (its live nodes' outputs). */
  readonly elements: number;
}

/** The elements of every tensor a graph computes for its outputs: the memory traffic a step cannot avoid. */
const liveElements = (g: Graph): number =>
  liveNodes(g, [...g.outputs.values()]).reduce(
    (sum, n) => sum + n.outputs.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0),
    0,
  );

/**
 * The fastest of `steps` training steps after one warm-up, for K classes, one bank variant and the pixel
 * loss at 1/`downsample` of the crop.
 */
export const stepMs = (
  classes: number,
  variant: "none" | "crossImage" | "singleImage",
  { steps, threads, size, downsample = 1 }: {
    steps: number;
    threads: number;
    size: number;
    downsample?: number;
  },
) =>
  Effect.scoped(Effect.gen(function* () {
    const t = trainConfig({ steps: 100, batchSize: BATCH, optimizer: sgdSpec({ lr: 1e-3 }) });
    const hostMs: number[] = [];
    const { graph: g, stages } = trainingStages(spec(classes, variant, downsample), {
      batch: BATCH,
      height: size,
      width: size,
      trainSize: [size, size],
    }, optimizerConfig(t));
    const ex = yield* execute(plan("bank", g, stages.map((s) => timed(s, hostMs))), { seed: 0, threads });
    const rng = random(1);
    const plane = size * size;
    // Three present classes per image, spread over the vocabulary; pixels labelled with them.
    const present = [0, 1].map((b) => [0, 1, 2].map((j) => (b * 7919 + j * 104729) % classes));
    const labels = new Int32Array(BATCH * plane).map((_, i) => present[Math.floor(i / plane)][i % 3]);
    const multiHot = new Float32Array(BATCH * classes);
    present.forEach((cs, b) => cs.forEach((c) => (multiHot[b * classes + c] = 1)));
    const feeds = (step: number): Record<string, Value> => ({
      images: value("float32", Float32Array.from({ length: BATCH * 3 * plane }, () => rng.normal()), [
        BATCH,
        3,
        size,
        size,
      ]),
      labels: value("int32", labels, [BATCH, size, size]),
      lr: value("float32", Float32Array.of(1e-3), []),
      step: value("float32", Float32Array.of(step), []),
      [IMAGE_LABELS]: value("float32", multiHot, [BATCH, classes]),
      [PIXEL_LABELLED]: value("float32", Float32Array.of(1, 1), [BATCH]),
    });
    yield* ex.run(feeds(1));
    const times: number[] = [], bank: number[] = [];
    for (let s = 0; s < steps; s++) {
      const f = feeds(s + 2);
      hostMs.length = 0;
      const t0 = performance.now();
      yield* ex.run(f);
      times.push(performance.now() - t0);
      bank.push(hostMs.reduce((a, b) => a + b, 0));
    }
    return { step: fastest(times), bank: fastest(bank), elements: liveElements(g) } satisfies StepTime;
  }));

/** The process's peak resident memory (Linux: VmHWM), in bytes; 0 where unknown. */
export const peakRss = (): number => {
  try {
    const kb = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"))?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
};

/** The step variants measured per K: a bank variant and the pixel loss's downsampling r. */
const VARIANTS = {
  none: { bank: "none", r: 1 },
  single: { bank: "singleImage", r: 1 },
  cross: { bank: "crossImage", r: 1 },
  crossHalf: { bank: "crossImage", r: 2 },
  crossFeature: { bank: "crossImage", r: STRIDE },
  noneFeature: { bank: "none", r: STRIDE },
} as const;
type Variant = keyof typeof VARIANTS;
type Row = { readonly k: number } & Record<Variant, StepTime>;

/** The computed paragraph under the table: growth with K per loss resolution, and the bank's own cost. */
export const bankFinding = (rows: readonly Row[]): string => {
  const first = rows[0], last = rows[rows.length - 1];
  if (last.k === first.k) return "Only one vocabulary size was measured: no ratio.";
  const k = last.k.toLocaleString("en-US");
  const grew = (v: Variant) =>
    `${(last[v].step / first[v].step).toFixed(2)}× (${first[v].step.toFixed(1)} → ${
      last[v].step.toFixed(1)
    } ms)`;
  const within = (v: Variant) => last[v].step / first[v].step <= 2;
  const verdict = (v: Variant) => within(v) ? "within the issue's 2×" : "over the issue's 2×";
  return bankRatioText(last) +
    ` From K = ${first.k} to ${k} the step with the cross-image bank grew ${grew("cross")} with the pixel ` +
    `loss at the crop's size (${verdict("cross")}), ${grew("crossHalf")} at half of it (LarvSeg's official ` +
    `\`downsample_rate\` 2; ${verdict("crossHalf")}) and ${grew("crossFeature")} at feature resolution ` +
    `(\`pixelLossDownsample: ${STRIDE}\`, no resize; ${
      verdict("crossFeature")
    }). Without any bank the same ` +
    `three readings are ${grew("none")} at the crop's size and ${
      grew("noneFeature")
    } at feature resolution: ` +
    "what grows with K is the K-wide part every LarvSeg step has, above all the K-class logits resized to the " +
    "loss size with their softmax cross-entropy, forward and backward (2 × 40 × 40 × 21,841 values at the " +
    `crop's size, 64× fewer at feature resolution). The bank's own cost: its host stages took ` +
    `${first.cross.bank.toFixed(2)} → ${last.cross.bank.toFixed(2)} ms ` +
    `(${(last.cross.bank / first.cross.bank).toFixed(2)}×) while the bank grew ${
      (last.k / first.k).toFixed(0)
    }×, ` +
    `and the cross-image step minus the no-bank step is ${
      (first.cross.step - first.none.step).toFixed(1)
    } ms at ` +
    `K = ${first.k} and ${
      (last.cross.step - last.none.step).toFixed(1)
    } ms at K = ${k} with the loss at the crop's size, ` +
    `${(first.crossFeature.step - first.noneFeature.step).toFixed(1)} and ` +
    `${
      (last.crossFeature.step - last.noneFeature.step).toFixed(1)
    } ms at feature resolution (the attentive ` +
    "loss's own K-wide terms, the pooled logits and their cross-entropies over [b, P, K]; the spread between " +
    "runs is of the same order). " + floorText(first, last);
};

/**
 * The bank's step-time ratio at the largest K: the cross-image step over the no-bank step, with the pixel
 * loss at the crop's size and at feature resolution.
 */
export const bankRatioText = (last: Row): string => {
  const k = last.k.toLocaleString("en-US");
  const of = (bank: Variant, none: Variant) =>
    `${(last[bank].step / last[none].step).toFixed(2)}× (${last[bank].step.toFixed(1)} against ${
      last[none].step.toFixed(1)
    } ms)`;
  return `At K = ${k} the step with the cross-image bank takes ${
    of("cross", "none")
  } the step without a bank ` +
    `with the pixel loss at the crop's size and ${
      of("crossFeature", "noneFeature")
    } at feature resolution; ` +
    `the bank's host stages are ${last.cross.bank.toFixed(2)} ms of it.`;
};

/**
 * Why no loss resolution meets 2×: the tensors the step computes at feature resolution, K = 21,841 against
 * K = 150, and what they are.
 */
const floorText = (first: Row, last: Row): string => {
  const m = (x: number) => `${(x / 1e6).toFixed(1)} M`;
  const f = first.crossFeature.elements, l = last.crossFeature.elements;
  return `Even at feature resolution the step's graph computes ${m(l)} tensor elements at K = ` +
    `${last.k.toLocaleString("en-US")} against ${m(f)} at K = ${first.k} (${(l / f).toFixed(0)}×; at the ` +
    `crop's size ${m(last.cross.elements)}): the K × d class embeddings, projected, normalized, ` +
    "back-propagated and updated every step, and the K logits of every feature pixel with their z-score and " +
    "cross-entropies. That floor is the classifier scoring every class on every step, as the official code " +
    "does; a step within 2× of K = 150 would need it to touch fewer classes per step (sampled negatives), " +
    "which is another method.";
};

export const main = async (_args: string[]) => {
  const maxClasses = Number(flag("max-classes") ?? 21841);
  const steps = Number(flag("steps") ?? 5);
  const threads = Number(flag("threads") ?? 1);
  const size = Number(flag("size") ?? 64);
  const rounds = Number(flag("rounds") ?? 1);
  const options = { steps, threads, size };
  const sizes = VOCABULARY.filter((k) => k <= maxClasses);
  const rows: Row[] = [];
  const loadBefore = Deno.loadavg()[0];
  const started = performance.now();
  for (const k of sizes) {
    // Rounds over the variants, interleaved, so that a slow minute of the shared machine hits every variant
    // alike; each figure is the fastest over all rounds.
    const row: Partial<Record<Variant, StepTime>> = {};
    for (let round = 0; round < rounds; round++) {
      for (const [name, v] of Object.entries(VARIANTS) as [Variant, (typeof VARIANTS)[Variant]][]) {
        const t = await Effect.runPromise(stepMs(k, v.bank, { ...options, downsample: v.r }));
        const seen = row[name];
        row[name] = seen === undefined
          ? t
          : { step: Math.min(seen.step, t.step), bank: Math.min(seen.bank, t.bank), elements: t.elements };
      }
    }
    rows.push({ k, ...row } as Row);
    console.error(
      `K=${k}: ` + Object.keys(VARIANTS).map((v) =>
        `${v} ${row[v as Variant]!.step.toFixed(1)}`
      ).join(" / ") +
        ` ms (bank stages ${row.cross!.bank.toFixed(2)} ms)`,
    );
  }
  const loadAfter = Deno.loadavg()[0];
  const minutes = (performance.now() - started) / 60000;
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(3)} GiB`;
  const first = rows[0];
  const ratio = (r: Row, v: Variant) => `${(r[v].step / first[v].step).toFixed(2)}×`;
  const body = [
    `Produced by \`npx --yes deno@2.9.6 task bench larvseg-bank --max-classes ${maxClasses} --steps ${steps} ` +
    `--rounds ${rounds} --threads ${threads} --size ${size}\` on ${
      new Date().toISOString().slice(0, 10)
    }, ${thisCpu()}, ` +
    `${navigator.hardwareConcurrency} cores shared with other engineers' runs (load average ` +
    `${loadBefore.toFixed(1)} at the start, ${loadAfter.toFixed(1)} at the end; ${
      minutes.toFixed(1)
    } min, peak ` +
    `RSS ${gib(peakRss())}). A training step of a small LarvSeg segmenter (d = ${D}, stride ${STRIDE}, ` +
    `${size}×${size} crops, batch ${BATCH}, 8 pairs per image), ${threads} intra-op thread(s), the fastest of ` +
    `${steps} steps after one warm-up in each of ${rounds} round(s) over the variants, interleaved (the least ` +
    "disturbed by the other processes; medians moved by ±50 % between runs of this command).",
    "",
    `Bank memory at K = 21,841, d = ${D}: cross-image (M = Kp = 20) ${gib(bankBytes(21841, 20, 20))}, ` +
    `single-image (M = Kp = 1) ${gib(bankBytes(21841, 1, 1))}. The bank is host state of two runtime host ` +
    "stages (layers/larvseg_bank.ts): before the graph, `read` gathers the batch's classes' bank means " +
    "(b·P·d values in); after it, `write` stores the new rows (b·P·Kp·d values out) in place. Per step " +
    "that is O(touched rows) whatever K (tests/larvseg_train_test.ts: a step reads and writes only its " +
    "classes' rows, in the same array); the bank never enters or leaves ONNX Runtime (which copies " +
    "every output: as a graph `next:` output the 2.08 GiB bank was copied out, and rebuilt by a " +
    "bank-sized scatter and `where`, on every step).",
    "",
    `Columns: the step (ms) with no bank, the single-image bank and the cross-image bank, the pixel loss at the ` +
    `crop's size; the cross-image step with the pixel loss at half the crop's size (r = 2, LarvSeg's official ` +
    `form) and at feature resolution (r = ${STRIDE}); the no-bank step at feature resolution; each one's growth ` +
    "over K = 150; and the elements of every tensor the cross-image step's graph computes (its live nodes' " +
    "outputs, forward, backward and update; millions), the memory traffic a step cannot avoid.",
    "",
    table(
      [
        { header: "K", cell: (r: Row) => r.k.toLocaleString("en-US") },
        { header: "no bank", cell: (r) => r.none.step.toFixed(1) },
        { header: "single-image", cell: (r) => r.single.step.toFixed(1) },
        { header: "cross-image", cell: (r) => r.cross.step.toFixed(1) },
        { header: "bank host stages", cell: (r) => r.cross.bank.toFixed(2) },
        { header: "cross, r = 2", cell: (r) => r.crossHalf.step.toFixed(1) },
        { header: `cross, r = ${STRIDE}`, cell: (r) => r.crossFeature.step.toFixed(1) },
        { header: `no bank, r = ${STRIDE}`, cell: (r) => r.noneFeature.step.toFixed(1) },
        { header: "bank size", cell: (r) => gib(bankBytes(r.k, 20, 20)) },
        { header: "elements, r = 1 (M)", cell: (r) => (r.cross.elements / 1e6).toFixed(1) },
        { header: `elements, r = ${STRIDE} (M)`, cell: (r) => (r.crossFeature.elements / 1e6).toFixed(1) },
        { header: "cross ×", cell: (r) => ratio(r, "cross") },
        { header: "cross r = 2 ×", cell: (r) => ratio(r, "crossHalf") },
        { header: `cross r = ${STRIDE} ×`, cell: (r) => ratio(r, "crossFeature") },
        { header: `no bank r = ${STRIDE} ×`, cell: (r) => ratio(r, "noneFeature") },
      ],
      rows,
      "plain",
    ),
    "",
    bankFinding(rows) + " Timings on the shared machine vary by tens of percent from run to run.",
    "",
    "Why small crops (the command's default is 64×64): a run at 64×64 was OOM-killed at 12.9 GiB RSS in the " +
    "K = 21,841 rows (2026-11-29) while other engineers' runs held ≈ 10 of the machine's 23 GiB: the K-class " +
    `logits at the crop's size with their gradients. 40×40 is the smallest crop with at least Kp = 20 feature ` +
    `pixels at stride ${STRIDE}.`,
  ];
  await recordSection("BENCHMARKS.md", "LarvSeg memory bank", body.join("\n"));
  console.log(body.join("\n"));
};
