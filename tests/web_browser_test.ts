/**
 * kappa's page in headless Chromium (web/): it segments a CamVid val frame as `predict --export-size` does,
 * trains in the tab with kappa's losses, downloads a checkpoint that `deno task eval` accepts, runs on
 * WebGPU where an adapter exists, and says what went wrong in one line.
 *
 * One small model for all of it (tests/fixtures/web_experiment.ts, 96×128 crops of CamVid, dropout in ξ so
 * that the step graph has noise feeds), trained 4 steps here; its training export holds one batch, so the
 * page's 5 steps run on a fixed batch. `.ci/setup` installs Chromium; without it every test here is
 * skipped and says why in its name.
 */
import * as ort from "onnxruntime-node";
import { Effect, Exit, Scope } from "effect";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { webExperiment } from "./fixtures/web_experiment.ts";
import { launchBrowser, noChromiumReason, type Page } from "../web/browser.ts";
import { serveWeb } from "../web/server.ts";
import { webSource } from "../web/sources.ts";
import { exportRunTraining, TRAINING_FILES, writeTrainingExport } from "../train/export_training.ts";
import { train } from "../train/train.ts";
import { loadRun } from "../train/load_run.ts";
import { noiseFeed } from "../train/run_state.ts";
import { readMask, readRgb } from "../data/decode.ts";
import { exportInput, predictAtExportSize } from "../eval/export_size.ts";
import { makePredictor } from "../eval/predictor.ts";
import { exportModel } from "../eval/export_model.ts";
import { evaluate } from "../eval/evaluate.ts";
import { openDataset } from "../data/open.ts";
import { requireKind } from "../kinds/registry.ts";
import { semanticKind } from "../kinds/semantic.ts";
import { exportedModel } from "../kinds/export.ts";
import { trainingStages } from "../interpret/graphs.ts";
import { optimizerConfig } from "../interpret/optimizer.ts";
import { plan } from "../ir/plan.ts";
import { value } from "../ir/value.ts";
import { execute } from "../runtime/execute.ts";
import { decodeSafetensors } from "../io/safetensors.ts";
import { learningRate } from "../dsl/training.ts";
import { NOISE } from "../layers/dropout.ts";
import { toOnnx } from "../onnx/lower.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";

const FRAME = resolve("../shared/data/camvid/images/val/0016E5_07959.jpg");
const STEPS = 5;
const EVAL_IMAGES = 8;

const noChromium = await noChromiumReason();
if (noChromium) console.log(`web_browser_test: skipping: ${noChromium}`);
const skip = noChromium ? ` (skipped: ${noChromium})` : "";

interface Fixture {
  readonly dir: string;
  readonly runDir: string;
  readonly exportDir: string;
  readonly url: string;
  readonly scope: Scope.Closeable;
  readonly browser: Awaited<ReturnType<typeof launchBrowser>>;
  readonly page: Page;
  readonly downloads: string;
}

let fixture: Promise<Fixture> | undefined;
/** Trains the model, writes its training export, serves it and opens the page: once for every test. */
const setup = () =>
  fixture ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), "kappa-web-"));
    const runDir = join(dir, "run");
    await Effect.runPromise(
      train(webExperiment(), { out: runDir, workers: 0, print: () => {}, skipFinalEval: true }),
    );
    const exportDir = join(dir, "export");
    const x = await Effect.runPromise(
      exportRunTraining(runDir, undefined, { shardBatches: 1, steps: STEPS, workers: 0 }),
    );
    await Effect.runPromise(writeTrainingExport(exportDir, x));
    const scope = Effect.runSync(Scope.make());
    const served = await Effect.runPromise(webSource(exportDir));
    const server = await Effect.runPromise(Scope.provide(serveWeb(served), scope));
    // A fake camera (a test pattern) that the page may use without asking.
    const browser = await launchBrowser([
      "--use-fake-device-for-media-stream",
      "--use-fake-ui-for-media-stream",
    ]);
    const downloads = join(dir, "downloads");
    await browser.allowDownloads(downloads);
    const page = await browser.open(server.url);
    await page.waitFor(`globalThis.kappaPage?.status === "ready"`);
    return { dir, runDir, exportDir, url: server.url, scope, browser, page, downloads };
  })();

/** Segments FRAME through the page's own file input, as a user picks a photo (once for the tests that need it). */
let segmented: Promise<void> | undefined;
const segmentFrame = (f: Fixture) =>
  segmented ??= (async () => {
    await f.page.setInputFiles("#photo-input", [FRAME]);
    await f.page.waitFor(`kappaPage.result?.name === "0016E5_07959.jpg"`);
  })();

/** Pixels where two class maps differ. */
const differing = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
};
const fromBase64 = <T>(b64: string, ArrayType: new (b: ArrayBuffer) => T): T =>
  new ArrayType(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer);
const toBase64 = (bytes: Uint8Array) => {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
};

/** kappa's classes of FRAME by `predict --export-size`, and its input tensor and logits for the export. */
const kappaReference = async (runDir: string) => {
  const run = await Effect.runPromise(loadRun(runDir));
  const e = run.experiment;
  const frame = await Effect.runPromise(readRgb(FRAME));
  const classes = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const predictor = yield* makePredictor((yield* requireKind(e, semanticKind, "test")).model, run.state, {
      mode: "whole",
      trainSize: e.data.train.cropSize,
    });
    return (yield* predictAtExportSize(predictor, frame, e)).classes;
  })));
  const { images } = await Effect.runPromise(exportInput(frame, e));
  return { frame, classes, images };
};

Deno.test({
  name: "web: the page segments a CamVid val frame as predict --export-size does (input, logits, pixels)" +
    skip,
  ignore: noChromium !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const f = await setup();
    const ref = await kappaReference(f.runDir);
    await segmentFrame(f);
    const r = await f.page.evaluate<{ classes: string; input: string; logits: string; logitsDims: number[] }>(
      "kappaPage.resultArrays()",
    );
    // The page decodes and fits the photo to the same bytes as kappa (libvips' resize, resize.ts).
    const input = fromBase64(r.input, Float32Array);
    assertEquals(input.length, ref.images.length);
    assertEquals(differing(input, ref.images), 0);
    // Logits on that input: onnxruntime-web (wasm) against onnxruntime-node on the same file.
    const session = await ort.InferenceSession.create(join(f.exportDir, TRAINING_FILES.model));
    const out = await session.run({ images: new ort.Tensor("float32", ref.images, [1, 3, 96, 128]) });
    await session.release();
    const logits = fromBase64(r.logits, Float32Array), node = out.logits.data as Float32Array;
    assertEquals(r.logitsDims, [...out.logits.dims]);
    let max = 0;
    for (let i = 0; i < node.length; i++) max = Math.max(max, Math.abs(logits[i] - node[i]));
    assert(max <= 1e-4, `logits differ by up to ${max}`);
    // Classes at the frame's size: at least 99 % of pixels equal to predict --export-size.
    const classes = fromBase64(r.classes, Int32Array);
    assertEquals(classes.length, ref.classes.length);
    assert(new Set(ref.classes).size >= 2, "the comparison needs a model that predicts several classes");
    const agree = 1 - differing(classes, ref.classes) / classes.length;
    assert(agree >= 0.99, `${(100 * agree).toFixed(3)} % of pixels agree`);
    console.log(`web: ${(100 * agree).toFixed(3)} % of pixels agree, logits within ${max.toExponential(2)}`);
  },
});

Deno.test({
  name:
    "web: the result shows an overlay and a legend (screenshot), and the class map downloads as a PNG of ids" +
    skip,
  ignore: noChromium !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const f = await setup();
    await segmentFrame(f);
    const box = await f.page.evaluate<
      { x: number; y: number; width: number; height: number; legend: number }
    >(
      `(() => { document.getElementById("overlay").scrollIntoView();
        const r = document.getElementById("overlay").getBoundingClientRect();
        return { x: r.x, y: r.y, width: r.width, height: r.height,
          legend: document.querySelectorAll("#legend li").length }; })()`,
    );
    const present = await f.page.evaluate<number[]>(
      "[...document.querySelectorAll('#legend li')].map((li) => Number(li.dataset.class))",
    );
    const classes = fromBase64(
      (await f.page.evaluate<{ classes: string }>("kappaPage.resultArrays()")).classes,
      Int32Array,
    );
    assertEquals(new Set(present), new Set(classes));
    assert(box.legend >= 2 && box.width > 200 && box.height > 100, JSON.stringify(box));
    const shot = join(f.dir, "page.png");
    await writeFile(shot, await f.page.screenshot());
    const img = await Effect.runPromise(readRgb(shot));
    // The overlay's region of the screenshot is a picture (many colours), not an empty canvas.
    const colours = new Set<number>();
    for (let y = Math.ceil(box.y) + 2; y < Math.min(img.height, box.y + box.height - 2); y += 2) {
      for (let x = Math.ceil(box.x) + 2; x < box.x + box.width - 2; x += 2) {
        const i = 3 * (y * img.width + x);
        colours.add((img.data[i] << 16) | (img.data[i + 1] << 8) | img.data[i + 2]);
      }
    }
    assert(colours.size > 200, `only ${colours.size} colours in the overlay`);
    // The read-out names the class under the pointer.
    const [px, py] = [300, 200];
    const hover = await f.page.evaluate<string>(`(() => { const c = document.getElementById("overlay");
      const r = c.getBoundingClientRect();
      c.dispatchEvent(new MouseEvent("mousemove", { clientX: r.x + (${px} + 0.5) * r.width / 480,
        clientY: r.y + (${py} + 0.5) * r.height / 360 }));
      return document.getElementById("hover").textContent; })()`);
    const c = classes[py * 480 + px];
    const name = (await f.page.evaluate<string[]>("kappaPage.info.classNames"))[c];
    assertEquals(hover, `(${px}, ${py}): ${name} (class ${c})`);
    // The downloaded class map holds the class ids, one per pixel of the photo.
    await f.page.evaluate(`document.getElementById("download-png").click()`);
    const file = await f.browser.waitForDownload();
    assertEquals(file, "0016E5_07959-classes.png");
    const mask = await Effect.runPromise(readMask(join(f.downloads, file)));
    assertEquals([mask.height, mask.width], [360, 480]);
    assertEquals(differing(mask.data, classes), 0);
  },
});

/** kappa's CPU run of the same steps: the plan on onnxruntime-node from the run's checkpoint, the shard's batch. */
const kappaSteps = async (runDir: string, exportDir: string) => {
  const run = await Effect.runPromise(loadRun(runDir));
  const e = run.experiment, t = e.train;
  const [height, width] = e.data.train.cropSize;
  const shard = await Effect.runPromise(
    decodeSafetensors(new Uint8Array(await readFile(join(exportDir, TRAINING_FILES.shard))), "shard"),
  );
  return await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const { graph, stages } = trainingStages(
      e.model,
      { batch: t.batchSize, height, width, trainSize: [height, width] },
      optimizerConfig(t),
    );
    const p = plan(e.name, graph, stages);
    const ex = yield* execute(p, { seed: t.seed });
    for (const name of ex.state.keys()) ex.state.set(name, run.state.get(name)!);
    const losses: number[] = [];
    for (let i = 0; i < STEPS; i++) {
      const step = run.step + 1 + i;
      const feeds = {
        images: value("float32", shard.tensors.images.data as Float32Array, shard.tensors.images.shape),
        labels: value("int32", shard.tensors.labels.data as Int32Array, shard.tensors.labels.shape),
        lr: value(
          "float32",
          Float32Array.of(learningRate(t.schedule, t.optimizer.lr, step, run.step + STEPS)),
          [],
        ),
        step: value("float32", Float32Array.of(step), []),
        ...Object.fromEntries(
          p.feeds.filter((s) => s.name.startsWith(NOISE)).map((s) => [s.name, noiseFeed(t.seed, step, s)]),
        ),
      };
      const out = yield* ex.run(feeds);
      losses.push(out.get("loss")!.data[0] as number);
    }
    return { losses, state: new Map(yield* ex.hostState()), step: run.step + STEPS };
  })));
};

/** `mIoU=…` of `deno task eval <run> --checkpoint FILE --limit N`. */
const cliEval = async (runDir: string, checkpoint: string) => {
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "cli/main.ts",
      "eval",
      runDir,
      "--checkpoint",
      checkpoint,
      "--limit",
      String(EVAL_IMAGES),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  assert(r.success, text);
  const m = /mIoU=([\d.]+)/.exec(text);
  assert(m !== null, text);
  return Number(m[1]);
};

Deno.test({
  name:
    "web: 5 training steps in the tab give kappa's CPU losses; the downloaded checkpoint evaluates to kappa's mIoU" +
    skip,
  ignore: noChromium !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const f = await setup();
    await f.page.waitFor(`kappaPage.training.status === "ready" || kappaPage.errors.length > 0`);
    assertEquals(await f.page.evaluate("kappaPage.errors"), []);
    // Through the page's controls: 5 steps, as a user sets and starts them.
    await f.page.evaluate(`document.getElementById("train-steps").value = "${STEPS}";
      document.getElementById("train-start").click()`);
    await f.page.waitFor(
      `kappaPage.training.status === "idle" && kappaPage.training.steps.length === ${STEPS}`,
    );
    const steps = await f.page.evaluate<{ step: number; losses: { loss: number } }[]>(
      "kappaPage.training.steps",
    );
    const ref = await kappaSteps(f.runDir, f.exportDir);
    assertEquals(steps.map((s) => s.step), [5, 6, 7, 8, 9]);
    let worst = 0;
    for (let i = 0; i < STEPS; i++) {
      const rel = Math.abs(steps[i].losses.loss - ref.losses[i]) / Math.abs(ref.losses[i]);
      assert(
        rel <= 1e-4,
        `step ${steps[i].step}: loss ${steps[i].losses.loss} in the tab, ${ref.losses[i]} in kappa`,
      );
      worst = Math.max(worst, rel);
    }
    console.log(
      `web: ${STEPS} steps in the tab, losses within ${worst.toExponential(2)} relative of kappa's`,
    );
    // The checkpoint the page downloads is a run's checkpoint: `deno task eval` reads it.
    await f.page.waitFor(`!document.getElementById("download-checkpoint").disabled`);
    await f.page.evaluate(`document.getElementById("download-checkpoint").click()`);
    const file = join(f.downloads, await f.browser.waitForDownload());
    assertEquals(file.endsWith("web-tiny-step-000009.safetensors"), true, file);
    const downloaded = await Effect.runPromise(
      decodeSafetensors(new Uint8Array(await readFile(file)), file),
    );
    assertEquals(downloaded.metadata["checkpoint.step"], "9");
    // Every state entry, at its shape. (Not element by element: the keys' bias of attention gets a zero
    // gradient up to rounding, which Adam divides by its root mean square, so those elements move by
    // whatever sign the rounding had, in the tab as between two CPUs; the losses and the mIoU are the check.)
    assertEquals(
      Object.entries(downloaded.tensors).map(([n, t]) => `${n}:${t.shape}`).sort(),
      [...ref.state].map(([n, v]) => `${n}:${v.dims}`).sort(),
    );
    const webMIoU = await cliEval(f.runDir, file);
    // kappa's own state after the same steps, evaluated by kappa on the same images.
    const run = await Effect.runPromise(loadRun(f.runDir));
    const dataset = await Effect.runPromise(openDataset(run.experiment.data.dataset, "val"));
    const kappa = await Effect.runPromise(
      Effect.flatMap(
        requireKind(run.experiment, semanticKind, "test"),
        (e) => evaluate(e, ref.state, dataset.classes, { mode: "whole", limit: EVAL_IMAGES, workers: 0 }),
      ),
    );
    const kappaMIoU = Number((100 * kappa.segmentation.mIoU).toFixed(2));
    assertEquals(webMIoU, kappaMIoU);
    console.log(
      `web: the downloaded checkpoint evaluates to mIoU ${webMIoU} (${EVAL_IMAGES} images), kappa's state ${kappaMIoU}`,
    );
    // The page segments with the state it trained (infer.onnx fed the parameters): the export of the
    // downloaded checkpoint gives the same logits on the same input.
    await segmentFrame(f);
    await f.page.waitFor(`!document.getElementById("use-tuned").disabled`);
    await f.page.evaluate(`document.getElementById("use-tuned").click()`);
    await f.page.waitFor(`kappaPage.result?.tuned === true`);
    const tuned = await f.page.evaluate<{ input: string; logits: string }>("kappaPage.resultArrays()");
    const tunedRun = await Effect.runPromise(loadRun(f.runDir, file));
    const tunedModel = await Effect.runPromise(exportedModel(tunedRun.experiment, tunedRun.state));
    const session = await ort.InferenceSession.create(
      exportModel(tunedRun.experiment, tunedRun.state, tunedModel).bytes,
    );
    const out = await session.run({
      images: new ort.Tensor("float32", fromBase64(tuned.input, Float32Array), [1, 3, 96, 128]),
    });
    await session.release();
    const [a, b] = [fromBase64(tuned.logits, Float32Array), out.logits.data as Float32Array];
    let max = 0;
    for (let i = 0; i < b.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
    assert(max <= 1e-4, `with the fine-tuned state, logits differ from the checkpoint's export by ${max}`);
  },
});

Deno.test({
  name: "web: WebGPU inference matches the CPU where the browser offers an adapter" + skip,
  ignore: noChromium !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const f = await setup();
    const adapter = await f.page.evaluate<string>("kappaPage.adapter");
    if (/^no /.test(adapter)) {
      console.log(`web: WebGPU skipped: this Chromium offers no adapter (${adapter})`);
      await t.step({ name: `skipped: no WebGPU adapter (${adapter})`, ignore: true, fn: () => {} });
      return;
    }
    const frame = await Effect.runPromise(readRgb(FRAME));
    const rgb = toBase64(frame.data);
    const gpu = await f.browser.open(`${f.url}?backend=webgpu`);
    try {
      await gpu.waitFor(`globalThis.kappaPage?.status === "ready"`);
      assertEquals(await gpu.evaluate("kappaPage.errors"), []);
      assertEquals(await gpu.evaluate("kappaPage.backend"), "webgpu");
      await gpu.evaluate(`kappaPage.segmentRgb("${rgb}", ${frame.height}, ${frame.width})`);
      const r = await gpu.evaluate<{ input: string; logits: string; classes: string }>(
        "kappaPage.resultArrays()",
      );
      // Against onnxruntime-node's CPU provider on the same file and input.
      const session = await ort.InferenceSession.create(join(f.exportDir, TRAINING_FILES.model));
      const out = await session.run({
        images: new ort.Tensor("float32", fromBase64(r.input, Float32Array), [1, 3, 96, 128]),
      });
      await session.release();
      const [la, lb] = [fromBase64(r.logits, Float32Array), out.logits.data as Float32Array];
      let max = 0;
      for (let i = 0; i < lb.length; i++) max = Math.max(max, Math.abs(la[i] - lb[i]));
      assert(max <= 1e-3, `WebGPU (${adapter}) logits differ from the CPU's by up to ${max}`);
      console.log(`web: WebGPU (${adapter}) logits within ${max.toExponential(2)} of the CPU's`);
    } finally {
      await gpu.close();
    }
  },
});

Deno.test({
  name: "web: the camera's frame is segmented (Chromium's fake camera)" + skip,
  ignore: noChromium !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const f = await setup();
    await f.page.evaluate(`document.getElementById("camera").click()`);
    await f.page.waitFor(
      `!document.getElementById("capture").hidden && document.getElementById("video").videoWidth > 0`,
    );
    await f.page.evaluate(`document.getElementById("capture").click()`);
    await f.page.waitFor(`kappaPage.result?.name === "camera.png" || kappaPage.errors.length > 0`);
    assertEquals(await f.page.evaluate("kappaPage.errors"), []);
    const size = await f.page.evaluate<number[]>(`[kappaPage.result.width, kappaPage.result.height,
      document.getElementById("video").videoWidth, document.getElementById("video").videoHeight]`);
    assertEquals(size.slice(0, 2), size.slice(2));
    assert(await f.page.evaluate<number>("document.querySelectorAll('#legend li').length") >= 1);
  },
});

Deno.test({
  name: "web: a photo that cannot be decoded is one line in the page" + skip,
  ignore: noChromium !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const f = await setup();
    const bad = join(f.dir, "broken.jpg");
    await writeFile(bad, new TextEncoder().encode("not a JPEG at all"));
    const before = (await f.page.evaluate<string[]>("kappaPage.errors")).length;
    await f.page.setInputFiles("#photo-input", [bad]);
    await f.page.waitFor(`kappaPage.errors.length > ${before}`);
    const line = (await f.page.evaluate<string[]>("kappaPage.errors")).at(-1)!;
    assert(line.startsWith("broken.jpg: cannot decode this image"), line);
  },
});

Deno.test({
  name:
    "web: a model that is not a kappa export is refused in one line; without COOP/COEP the page runs on one " +
    "thread and says so" + skip,
  ignore: noChromium !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const f = await setup();
    // A plain ONNX model (no kappa.* metadata), served by a host that sends no isolation headers.
    const g = new Graph("plain");
    g.output("y", o.relu(o.input(g, "x", [1, 4])));
    const file = join(f.dir, "plain.onnx");
    await writeFile(file, toOnnx(g).bytes);
    const scope = Effect.runSync(Scope.make());
    try {
      const served = await Effect.runPromise(webSource(file));
      const server = await Effect.runPromise(
        Scope.provide(serveWeb(served, { crossOriginIsolated: false }), scope),
      );
      const page = await f.browser.open(server.url);
      try {
        await page.waitFor(`globalThis.kappaPage?.status === "ready"`);
        const errors = await page.evaluate<string[]>("kappaPage.errors");
        assertEquals(errors.length, 1, errors.join("\n"));
        assert(
          errors[0].startsWith(
            "plain.onnx: not a kappa export: its metadata_props have no kappa.input_height",
          ),
          errors[0],
        );
        assertEquals(await page.evaluate("kappaPage.threads"), 1);
        const notes = await page.evaluate<string[]>("kappaPage.notes");
        assert(notes.some((n) => n.startsWith("wasm threads are unavailable")), notes.join("\n"));
      } finally {
        await page.close();
      }
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void));
    }
  },
});

Deno.test({
  name: "web: a training export whose state file is cut off is one line when training starts" + skip,
  ignore: noChromium !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const f = await setup();
    const broken = join(f.dir, "broken-export");
    await Deno.mkdir(broken);
    for (const name of Object.values(TRAINING_FILES)) {
      const bytes = await readFile(join(f.exportDir, name));
      await writeFile(join(broken, name), name === TRAINING_FILES.state ? bytes.subarray(0, 100) : bytes);
    }
    const scope = Effect.runSync(Scope.make());
    try {
      const served = await Effect.runPromise(webSource(broken));
      const server = await Effect.runPromise(Scope.provide(serveWeb(served), scope));
      const page = await f.browser.open(server.url);
      try {
        await page.waitFor(`kappaPage.training.status === "ready"`);
        await page.evaluate(`document.getElementById("train-start").click()`);
        await page.waitFor(`kappaPage.training.status === "idle"`);
        assertEquals(await page.evaluate("kappaPage.errors"), [
          "loading the training files: state.safetensors: header runs past the end of the file",
        ]);
        assertEquals(await page.evaluate("kappaPage.training.steps.length"), 0);
      } finally {
        await page.close();
      }
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void));
    }
  },
});

Deno.test({
  name: "web: (teardown) the browser and the server stop" + skip,
  ignore: noChromium !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    if (!fixture) return;
    const f = await fixture;
    await f.browser.close();
    await Effect.runPromise(Scope.close(f.scope, Exit.void));
    await rm(f.dir, { recursive: true, force: true });
  },
});
