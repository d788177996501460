/**
 * One vocabulary-scaling configuration in a process of its own (started by bench/vocab.ts): opens the
 * ONNX file named in the JSON argument, times `warmup + runs` runs on fixed pixel tokens, and prints
 * the times and this process's memory (VmRSS before the session, VmHWM at the end) as one JSON line.
 */
import * as ort from "onnxruntime-node";

interface Request {
  readonly model: string;
  readonly dims: readonly number[];
  readonly threads: number;
  readonly warmup: number;
  readonly runs: number;
}

/** A field of /proc/self/status in KiB ("VmHWM:   123456 kB"). */
const statusKiB = (field: string): number => {
  const status = Deno.readTextFileSync("/proc/self/status");
  return Number(status.match(new RegExp(`^${field}:\\s*(\\d+) kB`, "m"))?.[1] ?? NaN);
};

const request = JSON.parse(Deno.args[0]) as Request;
const bytes = Deno.readFileSync(request.model);
const size = request.dims.reduce((a, b) => a * b, 1);
// Pixel tokens of LayerNorm'ed scale; the values do not change the work.
const pixels = new ort.Tensor(
  "float32",
  Float32Array.from({ length: size }, (_, i) => Math.sin(i * 0.37)),
  [...request.dims],
);
const rssBeforeSessionKiB = statusKiB("VmRSS");
const session = await ort.InferenceSession.create(bytes, {
  intraOpNumThreads: request.threads,
  interOpNumThreads: 1,
  graphOptimizationLevel: "all",
});
const ms: number[] = [];
for (let i = 0; i < request.warmup + request.runs; i++) {
  const t0 = performance.now();
  await session.run({ pixels });
  if (i >= request.warmup) ms.push(performance.now() - t0);
}
await session.release();
console.log(JSON.stringify({ ms, peakRssKiB: statusKiB("VmHWM"), rssBeforeSessionKiB }));
