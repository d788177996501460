/**
 * The PyTorch 2 / JAX peers table alone, in one short round (for trying the peers; `bench perf` is the
 * benchmark): ours and each side at T = 1 and 2, sides in their first thread setting.
 *
 *   npx --yes deno@2.9.6 run -A bench/peers_quick.ts [--sides=eager,jax] [--compile-threads=1]
 *
 * `--compile-threads=1`: the torch.compile sides run at T = 1 only (their T = 2 kernels compile anew).
 */
import { Effect } from "effect";
import { exportedModel, exportModel, graphStage, plan } from "../mod.ts";
import { ensurePeerVenv, VENV } from "./peer_venv.ts";
import { configsOf, runSide, type SideResult, SIDES } from "./peers.ts";
import { type PeersFigures, renderPeers, type SideFigures } from "./peers_report.ts";
import { initialState, timeInference, timeTraining } from "./perf_runs.ts";
import {
  peerInputs,
  PERF_MODEL,
  perfBatch,
  perfExperiment,
  perfFeeds,
  perfTrainingGraph,
} from "./segmenter_model.ts";
import { averageLoad, withLoad } from "./load.ts";
import { summarize } from "../figures/stats.ts";

const log = (line: string) => console.error(`peers quick: ${line}`);
const only = Deno.args.find((a) => a.startsWith("--sides="))?.slice(8).split(",");
const compileAtOne = Deno.args.includes("--compile-threads=1");
const TRAIN = { warmup: 2, runs: 3 }, INFER = { warmup: 2, runs: 10 }, TRACK = 30, CHECK = 5;

const pm = PERF_MODEL, g = perfTrainingGraph(pm), p = plan(g.name, g, [graphStage(g)]);
const feeds = perfFeeds(pm), initial = await initialState(p, 0);
const exported = exportModel(
  perfExperiment(pm),
  initial,
  Effect.runSync(exportedModel(perfExperiment(pm), initial)),
).bytes;
const image = perfBatch(pm).images.slice(0, 3 * pm.size * pm.size);
const inputs = await Deno.makeTempFile({ suffix: ".safetensors" });
await Deno.writeFile(inputs, peerInputs(pm, g, initial));
const venv = ensurePeerVenv(log);
const env = { TORCHINDUCTOR_CACHE_DIR: `${VENV}/inductor-cache` };
const missing = [...venv.missing];

const ours = [];
for (const threads of [1, 2]) {
  log(`ours, T=${threads}`);
  const train = await timeTraining(p, feeds, threads, TRAIN, { seed: 0 });
  const infer = await timeInference(exported, image, pm.size, threads, INFER);
  const child = new URL("./step_memory_child.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", child, JSON.stringify({ threads, runs: 3 })],
    stdout: "piped",
  }).output();
  const peak = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!).peakRssKiB / 1024;
  ours.push({
    threads,
    train: summarize(train.ms),
    infer: summarize(infer.ms),
    losses: train.losses,
    peakRssMiB: peak,
  });
}
log("ours, 30-step loss at T=2");
const ourTrack = (await timeTraining(p, feeds, 2, { warmup: 0, runs: TRACK }, { seed: 0 })).losses;

const sides: SideFigures[] = [];
for (const side of SIDES.filter((s) => (s.framework === "torch" ? venv.torch : venv.jax))) {
  if (only && !only.includes(side.name)) continue;
  const config = configsOf(side)[0];
  const byThreads = [];
  let first: SideResult | undefined;
  try {
    for (const threads of side.compiled && side.framework === "torch" && compileAtOne ? [1] : [1, 2]) {
      log(`${side.label}, T=${threads}`);
      const m = await withLoad(() =>
        Promise.resolve(
          runSide(venv.python, side, config, { inputs, threads, train: TRAIN, infer: INFER }, env),
        )
      );
      first ??= m.result;
      byThreads.push({
        threads,
        config: config.label,
        tried: [],
        train: summarize(m.result.stepMs ?? []),
        infer: summarize(m.result.inferMs ?? []),
        losses: [...(m.result.losses ?? [])],
        peakRssMiB: (m.result.peakRssKiB ?? NaN) / 1024,
        load: averageLoad([m.load]),
      });
    }
    let track: number[] | undefined;
    if (["eager", "eager-bf16", "compile-bf16"].includes(side.name)) {
      log(`${side.label}, 30-step loss`);
      const t = byThreads.at(-1)!.threads;
      const r = runSide(venv.python, side, config, {
        inputs,
        threads: t,
        train: { warmup: 0, runs: TRACK - 1 },
        infer: null,
      }, env);
      track = [...(r.losses ?? [])];
    }
    sides.push({
      side,
      version: side.framework === "jax" ? first!.torch : `PyTorch ${first!.torch}`,
      backend: first!.backend,
      firstStepSeconds: first!.firstStepSeconds ?? NaN,
      track,
      byThreads,
    });
  } catch (e) {
    missing.push(`${side.label} failed (${String(e).split("\n")[0]})`);
  }
}
await Deno.remove(inputs).catch(() => {});
const figures: PeersFigures = {
  sides,
  missing,
  ours,
  ourTrack,
  trackSteps: TRACK,
  checkSteps: CHECK,
  coldCompile: false,
};
console.log(renderPeers(figures));
