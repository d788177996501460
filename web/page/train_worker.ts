/// <reference lib="webworker" />
/**
 * The page's training runs here, off the main thread: a Web Worker with its own onnxruntime-web (the wasm
 * build, with the page's wasm threads). Messages in: `load` (the training files' URLs), `run` (that many
 * more steps), `pause` (stop after the current step), `checkpoint` (the state as safetensors bytes),
 * `parameters` (the tensors the inference graph reads). Messages out: `loaded`, `step` (one per step),
 * `idle` (stopped: paused, done or budget used up), `checkpoint`, `parameters`, `error` (one line).
 */
import { loadOrt } from "./ort.ts";
import { describeError } from "./errors.ts";
import { makeTrainer, type OrtLike, type Trainer, type TrainingSettings } from "./trainer.ts";

let trainer: Trainer | undefined;
let target = 0;
let running = false;
const post = (message: unknown, transfer: Transferable[] = []) => self.postMessage(message, transfer);

const bytes = async (url: string) => {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
};

const loop = async () => {
  if (running || !trainer) return;
  running = true;
  try {
    while (trainer.done() < target) {
      const r = await trainer.step();
      post({ type: "step", ...r, done: trainer.done() });
      // Let `pause` and `checkpoint` messages in between steps.
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  } catch (e) {
    post({
      type: "error",
      message: describeError(`training step ${trainer.settings.startStep + trainer.done() + 1}`, e),
    });
    target = trainer.done();
  } finally {
    running = false;
    post({ type: "idle", done: trainer.done(), budget: trainer.settings.lr.length });
  }
};

/** Messages are handled one after another (a `run` sent right after `load` waits for it). */
let queue: Promise<void> = Promise.resolve();
self.onmessage = (ev: MessageEvent) => {
  queue = queue.then(() => handle(ev.data));
};

const handle = async (m: { type: string; [k: string]: unknown }) => {
  try {
    if (m.type === "load") {
      const settings = (await (await fetch(m.settings as string)).json()) as TrainingSettings;
      const [step, state, shard] = await Promise.all(
        [m.step, m.state, m.shard].map((u) => bytes(u as string)),
      );
      const ort = await loadOrt("wasm", m.threads as number);
      trainer = await makeTrainer(ort as unknown as OrtLike, { step, state, shard }, settings, {
        executionProviders: ["wasm"],
        graphOptimizationLevel: "all",
      });
      post({ type: "loaded", threads: ort.env.wasm.numThreads });
    } else if (!trainer) {
      // Loading failed (its error was posted): the page stops waiting for steps.
      if (m.type === "run") post({ type: "idle", done: 0, budget: 0 });
    } else if (m.type === "run") {
      target = Math.min(trainer.done() + (m.steps as number), trainer.settings.lr.length);
      loop();
    } else if (m.type === "pause") {
      target = trainer.done();
    } else if (m.type === "checkpoint") {
      const data = trainer.checkpoint();
      post({ type: "checkpoint", data, step: trainer.settings.startStep + trainer.done() }, [data.buffer]);
    } else if (m.type === "parameters") {
      const values = (m.names as string[]).map((n) => [n, trainer!.state.get(n)!.slice()] as const);
      post({ type: "parameters", values, step: trainer.settings.startStep + trainer.done() });
    }
  } catch (e) {
    post({
      type: "error",
      message: describeError(m.type === "load" ? "loading the training files" : m.type, e),
    });
  }
};
