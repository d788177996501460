/**
 * `deno task bench web <run-dir> [--quick]`: kappa's page in headless Chromium against onnxruntime-node on
 * the same machine: one image's inference (the export's `session.run`, the same input tensor) and one
 * training step (the step graph of `deno task web`'s training export, the same batch, kappa's feeds), on
 * wasm with 1 thread and with one thread per core, on WebGPU where the browser offers an adapter (headless
 * Chromium without a GPU offers SwiftShader, a CPU fallback: one inference only, training not measured).
 * onnxruntime-node runs the same files through the page's own training loop (web/page/trainer.ts), so the
 * two sides differ only in the runtime. Sides alternate in rounds; each figure carries the CPU load other
 * processes put on the machine meanwhile. Rewrites "Web (onnxruntime-web in the tab)" in BENCHMARKS.md
 * (not with --quick: one round of fewer runs).
 */
import * as ortNode from "onnxruntime-node";
import { Effect, Exit, Scope } from "effect";
import { openSession, value } from "../mod.ts";
import { tensorFeeds } from "../profiling.ts";
import { launchBrowser, type Page } from "../web/browser.ts";
import { serveWeb } from "../web/server.ts";
import { webSource } from "../web/sources.ts";
import { makeTrainer, type OrtLike, type TrainingSettings } from "../web/page/trainer.ts";
import { averageLoad, type Load, QUIET_LOAD, waitForQuiet, withLoad } from "./load.ts";
import { machine } from "./machine.ts";
import { fixed, formatSpread, recordSection, table } from "../figures/markdown.ts";
import { summarize } from "../figures/stats.ts";

const SECTION = "Web (onnxruntime-web in the tab)";
const BENCHMARKS = new URL("../BENCHMARKS.md", import.meta.url);
const FRAME = "../shared/data/camvid/images/val/0016E5_07959.jpg";
const log = (line: string) => console.error(`bench web: ${line}`);

interface Side {
  readonly label: string;
  readonly where: "node" | "wasm" | "webgpu";
  readonly threads: number;
}

interface Figures {
  inferenceMs: number[];
  stepS: number[];
  loads: Load[];
}

const fromBase64 = (b64: string) =>
  new Float32Array(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer);

/** Opens the page for `side` and waits until it is ready to segment (and to train). */
const openPage = async (browser: Awaited<ReturnType<typeof launchBrowser>>, url: string, side: Side) => {
  const page = await browser.open(`${url}?backend=${side.where}&threads=${side.threads}`);
  await page.waitFor(`globalThis.kappaPage?.status === "ready"`, 600_000);
  const errors = await page.evaluate<string[]>("kappaPage.errors");
  if (errors.length) throw new Error(`${side.label}: ${errors.join("; ")}`);
  await page.setInputFiles("#photo-input", [new URL(`../${FRAME}`, import.meta.url).pathname]);
  await page.waitFor(`kappaPage.result !== undefined || kappaPage.errors.length > 0`, 600_000);
  return page;
};

/** `runs` inferences of the page's photo; the milliseconds of each `session.run`. */
const tabInference = async (page: Page, runs: number) => {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    ms.push(1000 * (await page.evaluate<{ seconds: number }>("kappaPage.segmentAgain()")).seconds);
  }
  return ms;
};

/** `steps` training steps through the page's controls; the seconds of each step's `session.run`. */
const tabSteps = async (page: Page, steps: number) => {
  await page.waitFor(
    `kappaPage.training.status === "ready" || kappaPage.training.status === "idle"`,
    600_000,
  );
  const before = await page.evaluate<number>("kappaPage.training.steps.length");
  await page.evaluate(`document.getElementById("train-steps").value = "${steps}";
    document.getElementById("train-start").click()`);
  await page.waitFor(
    `kappaPage.training.status === "idle" && kappaPage.training.steps.length === ${before + steps}`,
    3_600_000,
  );
  const errors = await page.evaluate<string[]>("kappaPage.errors");
  if (errors.length) throw new Error(errors.join("; "));
  return (await page.evaluate<{ seconds: number }[]>("kappaPage.training.steps")).slice(before).map((s) =>
    s.seconds
  );
};

export const main = async (args: string[]): Promise<void> => {
  const quick = args.includes("--quick");
  const runDir = args.find((a) => !a.startsWith("--"));
  if (!runDir) throw new Error("usage: deno task bench web <run-dir> [--quick]");
  const started = performance.now();
  const rounds = quick ? 1 : 3;
  const inferences = quick ? 3 : 10, steps = quick ? 2 : 3;
  const cores = Math.min(8, navigator.hardwareConcurrency);
  const budget = 1 + rounds * (steps + 1) * 2 + 4;
  log(`exporting ${runDir} for the page (one batch, ${budget} steps)…`);
  const served = await Effect.runPromise(webSource(runDir, undefined, { shardBatches: 1, steps: budget }));
  const files = served.files;
  const settings = JSON.parse(new TextDecoder().decode(files.get("training.json"))) as TrainingSettings;
  const scope = Effect.runSync(Scope.make());
  const browser = await launchBrowser();
  try {
    const server = await Effect.runPromise(Scope.provide(serveWeb(served), scope));
    const chromium = await browser.version();
    const probe = await browser.open(server.url);
    await probe.waitFor(`globalThis.kappaPage?.status === "ready"`, 600_000);
    const adapter = await probe.evaluate<string>("kappaPage.adapter");
    await probe.close();
    const hasGpu = !/^no /.test(adapter);
    const sides: Side[] = [
      { label: "onnxruntime-node, 1 thread", where: "node", threads: 1 },
      { label: `onnxruntime-node, ${cores} threads`, where: "node", threads: cores },
      { label: "tab, wasm, 1 thread", where: "wasm", threads: 1 },
      { label: `tab, wasm, ${cores} threads`, where: "wasm", threads: cores },
    ];
    const figures = new Map<string, Figures>(
      sides.map((s) => [s.label, { inferenceMs: [], stepS: [], loads: [] }]),
    );

    // The same input tensor on both sides: the page's own (it equals kappa's, tests/web_browser_test.ts).
    const first = await openPage(browser, server.url, sides[2]);
    const input = fromBase64((await first.evaluate<{ input: string }>("kappaPage.resultArrays()")).input);
    await first.close();
    const [h, w] = settings.cropSize;

    for (let round = 0; round < rounds; round++) {
      for (const side of sides) {
        log(`round ${round + 1}/${rounds}: ${side.label}…`);
        await waitForQuiet(QUIET_LOAD, quick ? 1 : 10);
        const f = figures.get(side.label)!;
        const browserBefore = browser.cpuSeconds();
        const { load } = await withLoad(async () => {
          if (side.where === "node") {
            await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
              const session = yield* openSession("model", files.get("model.onnx")!, {
                threads: side.threads,
                optimization: "all",
              });
              const feeds = tensorFeeds({ images: value("float32", input, [1, 3, h, w]) });
              for (let i = 0; i < inferences + 1; i++) {
                const t0 = performance.now();
                yield* Effect.promise(() => session.run(feeds as never));
                if (i > 0) f.inferenceMs.push(performance.now() - t0);
              }
            })));
            const trainer = await makeTrainer(
              ortNode as unknown as OrtLike,
              {
                step: files.get("train-step.onnx")!,
                state: files.get("state.safetensors")!,
                shard: files.get("shard.safetensors")!,
              },
              settings,
              { intraOpNumThreads: side.threads, interOpNumThreads: 1, graphOptimizationLevel: "all" },
            );
            for (let i = 0; i < steps + 1; i++) {
              const r = await trainer.step();
              if (i > 0) f.stepS.push(r.seconds);
            }
            await trainer.release();
          } else {
            const page = await openPage(browser, server.url, side);
            try {
              f.inferenceMs.push(...(await tabInference(page, inferences + 1)).slice(1));
              f.stepS.push(...(await tabSteps(page, steps + 1)).slice(1));
            } finally {
              await page.close();
            }
          }
        });
        // The browser is another process: its work for the tab is the side's own, not other load.
        const browserCores = (browser.cpuSeconds() - browserBefore) / load.seconds;
        f.loads.push({ cores: Math.max(0, load.cores - browserCores), seconds: load.seconds });
      }
    }

    // WebGPU: SwiftShader (a CPU fallback) is far slower than wasm, so one inference after a warm-up.
    let gpuLine = `WebGPU: not measured: this Chromium offers no adapter (${adapter}).`;
    if (hasGpu) {
      log(`WebGPU (${adapter}): one inference…`);
      const page = await openPage(browser, server.url, { label: "webgpu", where: "webgpu", threads: 1 });
      try {
        const ms = await tabInference(page, 2);
        const nodeMs = summarize(figures.get(sides[0].label)!.inferenceMs).median;
        gpuLine =
          `WebGPU (adapter "${adapter}"${/swiftshader/i.test(adapter) ? ", a CPU fallback" : ""}): one ` +
          `inference ${fixed(ms[1], 0)} ms, ${
            fixed(ms[1] / nodeMs, 0)
          }× onnxruntime-node on 1 thread; training ` +
          "in the tab runs on wasm only.";
      } finally {
        await page.close();
      }
    }

    const mc = machine();
    const base = (s: Side) => figures.get(sides[s.threads === 1 ? 0 : 1].label)!;
    const med = (xs: number[]) => summarize(xs).median;
    const body = `
Command: \`npx --yes deno@2.9.6 task bench web ${runDir}\` (${new Date().toISOString().slice(0, 10)}, ${
      fixed((performance.now() - started) / 60000, 1)
    } min). Machine: ${mc.cpu}, ${mc.cores} cores; ${chromium} (Debian, headless), onnxruntime-web 1.30.0
(npm, wasm build; the page sends COOP/COEP, so wasm threads are available), onnxruntime-node ${mc.ort} (CPU
execution provider).

The same files on both sides: the run's export (\`model.onnx\`, input ${h}×${w}) and its training step
graph (\`train-step.onnx\`, batch ${settings.batchSize}, ${settings.experiment} from step ${settings.startStep}). Inference is one
\`session.run\` on the page's input tensor for ${FRAME} (kappa's own, bitwise); a training step is one
\`session.run\` of the step graph (forward, backward, AdamW) with the state fed in and read back, in the page's
Web Worker and, for onnxruntime-node, through the page's training loop (\`web/page/trainer.ts\`). Median
(p10–p90) of ${rounds} × ${inferences} inferences and ${rounds} × ${steps} steps after one warm-up each, sides
alternating; the ratios divide by onnxruntime-node at the same thread count. "Other load" is the CPU that
processes other than the benchmark and its browser used meanwhile (the machine may be shared).

${
      table<Side>([
        { header: "where", cell: (s) => s.label },
        { header: "inference, ms", cell: (s) => formatSpread(summarize(figures.get(s.label)!.inferenceMs)) },
        {
          header: "÷ node",
          cell: (s) => fixed(med(figures.get(s.label)!.inferenceMs) / med(base(s).inferenceMs), 2),
        },
        {
          header: "training step, s",
          cell: (s) => formatSpread(summarize(figures.get(s.label)!.stepS)),
        },
        { header: "÷ node ", cell: (s) => fixed(med(figures.get(s.label)!.stepS) / med(base(s).stepS), 2) },
        { header: "other load, cores", cell: (s) => fixed(averageLoad(figures.get(s.label)!.loads), 2) },
      ], sides)
    }

${gpuLine}
`;
    console.log(`## ${SECTION}\n${body}`);
    if (quick) return log("--quick: BENCHMARKS.md is left unchanged");
    await recordSection(BENCHMARKS.pathname, SECTION, body);
    log(`wrote the "${SECTION}" section of ${BENCHMARKS.pathname}`);
  } finally {
    await browser.close();
    await Effect.runPromise(Scope.close(scope, Exit.void));
  }
};
