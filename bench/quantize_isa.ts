/**
 * `deno task bench quantize-isa <run-dir> <out.json>`, then `deno task bench quantize-isa --compare
 * a.json b.json`: whether the int8 exports compute the same values on two kinds of CPU. The first form runs
 * the float32 export and every int8 export in every weight format (onnx/quantize.ts) on the first 8
 * validation frames (fitted as the export's metadata says, one thread) and writes their logits and classes;
 * run it once natively and once under bench/cpuid_avx2.c (ONNX Runtime's AVX2 kernels), and the second form
 * prints, per export, the largest logit difference, the share of bit-equal logits and of equal classes.
 */
import * as ort from "onnxruntime-node";
import { Effect } from "effect";
import { exportedModel, exportModel, loadRun, openDataset } from "../mod.ts";
import { calibrateExport, EXPORT_QUANTIZATIONS, exportInput, WEIGHT_FORMATS } from "../profiling.ts";
import { fixed, table } from "../figures/markdown.ts";

const FRAMES = 8;

type Outputs = Record<string, { logits: number[]; classes: number[] }>;

const write = async (runDir: string, out: string) => {
  const run = await Effect.runPromise(loadRun(runDir));
  const e = run.experiment;
  const model = await Effect.runPromise(exportedModel(e, run.state, { ...run, runs: loadRun }));
  const ranges = await Effect.runPromise(calibrateExport(e, run.state, model));
  const dataset = await Effect.runPromise(openDataset(e.data.dataset, "val"));
  const [h, w] = e.data.train.cropSize;
  const images: Float32Array[] = [];
  for (const sample of dataset.samples.slice(0, FRAMES)) {
    const img = await Effect.runPromise(dataset.read(sample));
    const rgb = { data: img.image, height: img.height, width: img.width };
    images.push((await Effect.runPromise(exportInput(rgb, e))).images);
  }
  const feeds = {
    images: new ort.Tensor("float32", Float32Array.from(images.flatMap((i) => [...i])), [
      images.length,
      3,
      h,
      w,
    ]),
  };
  const sides: [string, Uint8Array][] = [
    ["float32", exportModel(e, run.state, model).bytes],
    ...EXPORT_QUANTIZATIONS.flatMap((quantize) =>
      WEIGHT_FORMATS.map((weightFormat): [string, Uint8Array] => [
        `${quantize} (${weightFormat})`,
        exportModel(e, run.state, model, { quantize, ranges, weightFormat }).bytes,
      ])
    ),
  ];
  const outputs: Outputs = {};
  for (const [label, bytes] of sides) {
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
    const o = await session.run(feeds);
    outputs[label] = {
      logits: [...(o.logits.data as Float32Array)],
      classes: Array.from(o.classes.data as BigInt64Array, Number),
    };
    await session.release();
  }
  await Deno.writeTextFile(out, JSON.stringify(outputs));
  console.error(
    `bench quantize-isa: wrote ${sides.length} exports' outputs on ${images.length} frames to ${out}`,
  );
};

const compare = async (a: string, b: string) => {
  const [x, y] = await Promise.all(
    [a, b].map(async (f) => JSON.parse(await Deno.readTextFile(f)) as Outputs),
  );
  const rows = Object.keys(x).map((label) => {
    const [p, q] = [x[label], y[label]];
    let worst = 0, bitEqual = 0, sameClass = 0;
    p.logits.forEach((v, i) => {
      worst = Math.max(worst, Math.abs(v - q.logits[i]));
      bitEqual += v === q.logits[i] ? 1 : 0;
    });
    p.classes.forEach((c, i) => (sameClass += c === q.classes[i] ? 1 : 0));
    return { label, worst, bitEqual: bitEqual / p.logits.length, sameClass: sameClass / p.classes.length };
  });
  const largest = x.float32.logits.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  console.log(`${a} against ${b} (float32's logits reach ${fixed(largest, 1)} in magnitude):\n`);
  console.log(table([
    { header: "export", cell: (r) => r.label },
    { header: "largest logit difference", cell: (r) => (r.worst === 0 ? "0" : r.worst.toExponential(2)) },
    { header: "bit-equal logits", cell: (r) => `${fixed(100 * r.bitEqual, 1)} %` },
    { header: "equal classes", cell: (r) => `${fixed(100 * r.sameClass, 2)} %` },
  ], rows));
};

export const main = async (args: string[]): Promise<void> => {
  const files = args.filter((x) => !x.startsWith("--"));
  if (args.includes("--compare") && files.length === 2) return await compare(files[0], files[1]);
  if (!args.includes("--compare") && files.length === 2) return await write(files[0], files[1]);
  throw new Error(
    "usage: deno task bench quantize-isa <run-dir> <out.json> | quantize-isa --compare <a.json> <b.json>",
  );
};
