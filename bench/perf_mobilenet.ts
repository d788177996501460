/**
 * `deno task bench perf --model=mobilenet`: the MobileNetV2 segmenter (bench/mobilenet_model.ts) against
 * the same model in PyTorch 2 — eager, torch.compile, and both under bf16 autocast (bench/peers.ts's
 * torch sides) — training step and one-image inference at T = 1 and 2, equal work checked by the loss,
 * MFU against the MatMul peak measured in the same run. Writes this CPU kind's "Performance (MobileNetV2 segmenter) on <CPU>"
 * section of BENCHMARKS.md (not with --quick).
 *
 *   --rounds=N      alternating rounds (default 3); --threads=1,2; --sides=eager,compile
 *   --tune          try each side's thread settings first (bench/peers.ts), as the ViT perf run does;
 *                   otherwise each side runs in its first setting
 *   --quick         one short round; BENCHMARKS.md is left unchanged
 *   --note=TEXT     a sentence on the machine's load for the section (e.g. "a grid ran beside it")
 */
import { Effect } from "effect";
import { exportedModel, exportModel, graphStage, inferenceGraph, plan } from "../mod.ts";
import { calibrationRanges, describe } from "../profiling.ts";
import { machine, sectionTitle } from "./machine.ts";
import { measureMatmul, PEAK_SIZES } from "./measure.ts";
import { ensurePeerVenv, VENV } from "./peer_venv.ts";
import { configsOf, runSide, type SideResult, SIDES, type ThreadConfig, tuneSide } from "./peers.ts";
import { averageLoad, type Load, waitForQuiet, withLoad } from "./load.ts";
import { recordSection } from "../figures/markdown.ts";
import { summarize } from "../figures/stats.ts";
import { initialState, timeInference, timeTraining } from "./perf_runs.ts";
import { perfBatch, perfExperiment, perfFeeds, perfTrainingGraph, shapesOf } from "./segmenter_model.ts";
import {
  flopSplit,
  MOBILENET_MODEL,
  MOBILENET_ROW,
  mobileNetPeerInputs,
  withPretrained,
} from "./mobilenet_model.ts";
import {
  mobileNetEqualWork,
  type MobileNetFigures,
  type MobileNetOurs,
  type MobileNetSide,
  renderMobileNet,
} from "./perf_mobilenet_report.ts";

export const SECTION = "Performance (MobileNetV2 segmenter)";
const BENCHMARKS = new URL("../BENCHMARKS.md", import.meta.url);
/** Step 1 (no update yet) and step 2 (after one: every gradient) must agree; 5 are reported. */
const CHECK_STEPS = 2, REPORT_STEPS = 5;

const log = (line: string) => console.error(`bench perf (mobilenet): ${line}`);

const flag = (args: readonly string[], name: string) =>
  args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

export const main = async (args: string[]): Promise<void> => {
  const quick = args.includes("--quick"), tune = args.includes("--tune");
  const rounds = quick ? 1 : Number(flag(args, "rounds") ?? 3);
  const threadsList = (flag(args, "threads") ?? "1,2").split(",").map(Number);
  const only = flag(args, "sides")?.split(",");
  const train = quick ? { warmup: 2, runs: 3 } : { warmup: 3, runs: 5 };
  const infer = quick ? { warmup: 2, runs: 10 } : { warmup: 5, runs: 20 };
  const matmulRepeats = quick ? { warmup: 1, runs: 5 } : { warmup: 3, runs: 10 };
  const quiet = quick ? { start: 2, turn: 1 } : { start: 60, turn: 5 };

  const pm = MOBILENET_MODEL;
  const g = perfTrainingGraph(pm);
  const p = plan(g.name, g, [graphStage(g)]);
  const feeds = perfFeeds(pm);
  const state = await withPretrained(pm, g, await initialState(p, 0));
  const model = Effect.runSync(exportedModel(perfExperiment(pm), state));
  const exported = exportModel(perfExperiment(pm), state, model).bytes;
  const batchImages = perfBatch(pm).images, perImage = 3 * pm.size * pm.size;
  const image = batchImages.slice(0, perImage);
  // The reduced-precision inference class: the int8-static export, its activation scales calibrated on
  // the batch's images (what a user calibrates on changes the accuracy, not the time measured here).
  const calibration = Array.from(
    { length: batchImages.length / perImage },
    (_, i) => batchImages.slice(i * perImage, (i + 1) * perImage),
  );
  const ranges = await Effect.runPromise(
    calibrationRanges(exported, calibration, [pm.size, pm.size], new Set(state.keys())),
  );
  const exportedInt8 = exportModel(perfExperiment(pm), state, model, { quantize: "int8-static", ranges })
    .bytes;
  const inputs = await Deno.makeTempFile({ prefix: "kappa-mobilenet-", suffix: ".safetensors" });
  await Deno.writeFile(inputs, mobileNetPeerInputs(pm, g, state));

  const venv = ensurePeerVenv(log);
  const missing = [...venv.missing];
  const env = { TORCHINDUCTOR_CACHE_DIR: `${VENV}/inductor-cache` };
  const sides = venv.torch
    ? SIDES.filter((s) => s.framework === "torch" && (!only || only.includes(s.name)))
    : [];
  if (venv.jax) missing.push("JAX (no MobileNetV2 model in bench/peer/segmenter_jax.py)");

  const configs = new Map<string, ThreadConfig>();
  const configOf = (name: string, threads: number) => configs.get(`${name}@${threads}`)!;
  for (const side of sides) {
    for (const threads of threadsList) {
      if (!tune) {
        configs.set(`${side.name}@${threads}`, configsOf(side)[0]);
        continue;
      }
      log(`${side.label}, T=${threads}: trying ${configsOf(side).length} thread settings…`);
      const { tuning } = tuneSide(venv.python, side, inputs, threads, { warmup: 2, runs: 3 }, env);
      configs.set(`${side.name}@${threads}`, tuning.tried[tuning.best].config);
    }
  }

  const ours = new Map<
    number,
    { peak: number; train: number[]; infer: number[]; inferInt8: number[]; losses: number[]; loads: Load[] }
  >();
  const peer = new Map<string, { results: SideResult[]; loads: Load[] }>();
  await waitForQuiet(0.1, quiet.start);
  try {
    for (let round = 1; round <= rounds; round++) {
      for (const threads of threadsList) {
        log(`round ${round}/${rounds}, T=${threads}: ours…`);
        await waitForQuiet(0.1, quiet.turn);
        const m = await withLoad(async () => {
          let peak = 0;
          for (const n of PEAK_SIZES) {
            peak = Math.max(peak, (await measureMatmul(n, threads, matmulRepeats)).gflops);
          }
          const t = await timeTraining(p, feeds, threads, train, { state });
          const i = await timeInference(exported, image, pm.size, threads, infer);
          const i8 = await timeInference(exportedInt8, image, pm.size, threads, infer);
          return { peak, t, i, i8 };
        });
        const o = ours.get(threads) ??
          { peak: 0, train: [], infer: [], inferInt8: [], losses: m.result.t.losses, loads: [] };
        o.peak = Math.max(o.peak, m.result.peak);
        o.train.push(...m.result.t.ms);
        o.infer.push(...m.result.i.ms);
        o.inferInt8.push(...m.result.i8.ms);
        o.loads.push(m.load);
        ours.set(threads, o);
        for (const side of sides) {
          const key = `${side.name}@${threads}`;
          if (!configs.has(key)) continue;
          log(`round ${round}/${rounds}, T=${threads}: ${side.label}…`);
          await waitForQuiet(0.1, quiet.turn);
          try {
            const r = await withLoad(() =>
              Promise.resolve(
                runSide(
                  venv.python,
                  side,
                  configOf(side.name, threads),
                  { inputs, threads, train, infer },
                  env,
                ),
              )
            );
            const entry = peer.get(key) ?? { results: [], loads: [] };
            entry.results.push(r.result);
            entry.loads.push(r.load);
            peer.set(key, entry);
          } catch (e) {
            missing.push(`${side.label} at T=${threads} failed (${String(e).split("\n")[0]})`);
            configs.delete(key);
          }
        }
      }
    }
  } finally {
    await Deno.remove(inputs).catch(() => {});
  }

  const sideFigures: MobileNetSide[] = sides.flatMap((side) => {
    const byThreads = threadsList.flatMap((threads) => {
      const e = peer.get(`${side.name}@${threads}`);
      if (!e?.results.length) return [];
      return [{
        threads,
        config: configOf(side.name, threads)?.label ?? "?",
        train: summarize(e.results.flatMap((r) => [...(r.stepMs ?? [])])),
        infer: summarize(e.results.flatMap((r) => [...(r.inferMs ?? [])])),
        losses: [...(e.results[0].losses ?? [])],
        load: averageLoad(e.loads),
      }];
    });
    const first = threadsList.map((t) => peer.get(`${side.name}@${t}`)?.results[0]).find((r) => r);
    return first
      ? [{
        side,
        version: `PyTorch ${first.torch} (${first.backend})`,
        byThreads,
        firstStepSeconds: first.firstStepSeconds ?? NaN,
      }]
      : [];
  });
  const oursFigures: MobileNetOurs[] = threadsList.map((threads) => {
    const o = ours.get(threads)!;
    return {
      threads,
      peak: o.peak,
      train: summarize(o.train),
      infer: summarize(o.infer),
      inferInt8: summarize(o.inferInt8),
      losses: o.losses,
      load: averageLoad(o.loads),
    };
  });
  const m = machine();
  const b = pm.spec.backbone;
  const figures: MobileNetFigures = {
    command: `npx --yes deno@2.9.6 task bench perf --model=mobilenet ${
      args.filter((a) => a !== "--model=mobilenet" && !a.startsWith("--note=")).join(" ")
    }`.trim(),
    date: new Date().toISOString().slice(0, 10),
    machine: `${m.cpu}, ${m.cores} cores; onnxruntime-node ${m.ort}, CPU execution provider`,
    model: {
      description: `the RankSeg pretrained grid's "+MT+LS+RA" row on ${MOBILENET_ROW.dataset} ` +
        "(`experiments/rankseg-pretrained/grid.ts` `rowModel`): ImageNet MobileNetV2 (width " +
        `${b._tag === "MobileNetV2" ? b.widthMultiplier : "?"}, output stride ${
          b._tag === "MobileNetV2" ? b.outputStride : "?"
        }, ` +
        "TF-SAME padding, folded BatchNorm, ReLU6; `../shared/weights/mobilenet_v2_1.0_224.safetensors`), " +
        `head width ${pm.spec.headDim}, ξ = transformer encoder, top-κ = ${
          pm.spec.select._tag === "TopK" ? pm.spec.select.k : "?"
        } ` +
        `of K = ${pm.spec.classes}, ψ = mask transformer (2 layers), rank-adaptive τ, asymmetric loss; ` +
        `learning rate ${pm.lr}, momentum ${pm.momentum}.`,
      params: describe(g).at(-1)!.params,
      batch: pm.batch,
      size: pm.size,
      step: flopSplit(g),
      forward: describe(g).at(-1)!.flops,
      inference: flopSplit(inferenceGraph(pm.spec, shapesOf(pm, 1))),
    },
    rounds,
    trainRepeats: train,
    inferRepeats: infer,
    checkSteps: CHECK_STEPS,
    reportSteps: REPORT_STEPS,
    ours: oursFigures,
    sides: sideFigures,
    missing,
    loadNote: flag(args, "note") ??
      `Other processes' load while measuring: ${
        oursFigures.map((o) => `T=${o.threads} ${o.load.toFixed(2)} cores (ours)`).join(", ")
      }.`,
  };
  const body = renderMobileNet(figures);
  // One section per CPU kind: a run on another kind of CPU keeps this one's figures.
  const title = sectionTitle(SECTION, m.cpu);
  console.log(`## ${title}\n\n${body}`);
  if (quick) return log("--quick: BENCHMARKS.md is left unchanged");
  if (!mobileNetEqualWork(figures)) {
    log("the equal work check FAILED; BENCHMARKS.md is left unchanged");
    Deno.exit(1);
  }
  await recordSection(BENCHMARKS.pathname, title, body, 2, SECTION);
  log(`wrote the "${title}" section of ${BENCHMARKS.pathname}`);
};
