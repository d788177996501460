/**
 * `deno task bench profile`: ONNX Runtime's profile of a training step — bench perf's ViT segmenter
 * ("vit") and the pretrained MobileNetV2 segmenter ("mobilenet", bench/mobilenet_model.ts) — by op type,
 * by compute-kernel family (GFLOP/s against the MatMul peak measured in the same process) and by node.
 * Prints Markdown; BENCHMARKS.md's "Where kappa's step time goes" quotes it.
 *
 *   deno task bench profile [--models=vit,mobilenet] [--threads=1] [--runs=5] [--warmup=2]
 */
import { Effect } from "effect";
import { execute, graphStage, plan, type Value } from "../mod.ts";
import { measureMatmul, PEAK_SIZES } from "./measure.ts";
import { readTrace } from "./profile.ts";
import { type NodeEvent, opProfile, renderOpProfile } from "./op_profile.ts";
import { initialState } from "./perf_runs.ts";
import { PERF_MODEL, perfFeeds, type PerfModel, perfTrainingGraph } from "./segmenter_model.ts";
import { MOBILENET_MODEL, withPretrained } from "./mobilenet_model.ts";
import { fixed, formatMs } from "../figures/markdown.ts";
import { summarize } from "../figures/stats.ts";

const log = (line: string) => console.error(`bench profile: ${line}`);
const flag = (args: readonly string[], name: string) =>
  args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

const MODELS: Record<string, { label: string; model: PerfModel; pretrained: boolean }> = {
  vit: {
    label: "bench perf's Segmenter + RankSeg (ViT-Tiny width, 256², batch 4)",
    model: PERF_MODEL,
    pretrained: false,
  },
  mobilenet: {
    label: "the pretrained MobileNetV2 segmenter (bench perf --model=mobilenet: 224², batch 4)",
    model: MOBILENET_MODEL,
    pretrained: true,
  },
};

/** Profiles `runs` training steps after `warmup` ones; returns the trace's events. */
const profileSteps = async (
  pm: PerfModel,
  pretrained: boolean,
  threads: number,
  warmup: number,
  runs: number,
): Promise<{ events: NodeEvent[]; wallMs: number[] }> => {
  const g = perfTrainingGraph(pm);
  const p = plan(g.name, g, [graphStage(g)]);
  const seeded = await initialState(p, 0);
  const state: ReadonlyMap<string, Value> = pretrained ? await withPretrained(pm, g, seeded) : seeded;
  const feeds = perfFeeds(pm);
  const dir = await Deno.makeTempDir({ prefix: "kappa-opprofile-" });
  try {
    const wallMs: number[] = [];
    await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const ex = yield* execute(p, { seed: 0, threads, optimization: "all", profilePrefix: `${dir}/step` });
      for (const [name, v] of state) ex.state.set(name, v);
      for (let i = 0; i < warmup + runs; i++) {
        const t0 = performance.now();
        yield* ex.run(feeds);
        if (i >= warmup) wallMs.push(performance.now() - t0);
      }
    }))); // the trace is written when the session is released
    return { events: (await readTrace(dir)) as NodeEvent[], wallMs };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
};

export const main = async (args: string[]): Promise<void> => {
  const models = (flag(args, "models") ?? "vit,mobilenet").split(",");
  const threads = Number(flag(args, "threads") ?? 1);
  const runs = Number(flag(args, "runs") ?? 5), warmup = Number(flag(args, "warmup") ?? 2);
  log(`ORT MatMul peak at T=${threads}…`);
  let peak = 0;
  for (const n of PEAK_SIZES) {
    peak = Math.max(peak, (await measureMatmul(n, threads, { warmup: 2, runs: 5 })).gflops);
  }
  const out = [
    `ORT MatMul peak at T = ${threads}: ${fixed(peak, 1)} GFLOP/s (n = ${PEAK_SIZES.join(", ")}).`,
  ];
  for (const name of models) {
    const m = MODELS[name];
    if (!m) throw new Error(`bench profile: unknown model ${name} (${Object.keys(MODELS).join(", ")})`);
    log(`${name}: ${warmup} + ${runs} profiled steps at T=${threads}…`);
    const { events, wallMs } = await profileSteps(m.model, m.pretrained, threads, warmup, runs);
    const p = opProfile(events, runs);
    out.push(
      "",
      `### ${m.label}, T = ${threads}`,
      "",
      `${p.runs} profiled steps after ${warmup}: wall ${
        wallMs.map(formatMs).join(", ")
      } ms; ORT run (median) ` +
        `${formatMs(p.runMs)} ms; sum of the nodes' median kernel times ${
          formatMs(p.kernelMs)
        } ms; outside ` +
        `the run (median wall − median run) ${formatMs(summarize(wallMs).median - p.runMs)} ms.`,
      "",
      renderOpProfile(p, peak),
    );
  }
  console.log(out.join("\n"));
};
