/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * kappa's page: segment a photo with an exported model, and fine-tune the model in the tab.
 *
 * The server (`deno task web`, web/server.ts) sends `/files/manifest.json`: which of `model.onnx` (a kappa
 * export), `infer.onnx` (its graph with the parameters as inputs) and `training.json` (a training export,
 * train/export_training.ts) it serves. Segmenting follows the export's metadata exactly as `predict
 * --export-size` does (export_input.ts); training runs in a Web Worker (train_worker.ts). Errors show as
 * one line each in the page. `globalThis.kappaPage` exposes the page's state for tests and benchmarks.
 */
import {
  type Backend,
  loadOrt,
  type OrtModule,
  threadsAvailable,
  wasmThreads,
  webGpuAdapter,
} from "./ort.ts";
import { describeError } from "./errors.ts";
import { onnxMetadata } from "./onnx_metadata.ts";
import { classShares, type ExportInfo, exportInfo, exportInput, mapBack } from "./export_input.ts";
import { defaultPalette, type Rgb } from "./palette.ts";
import { classMapPng } from "./png.ts";
import { drawLossChart } from "./chart.ts";
import type { StepRecord, TrainingSettings } from "./trainer.ts";

interface Manifest {
  readonly title: string;
  readonly source: string;
  readonly model: string | null;
  readonly infer: string | null;
  readonly training: string | null;
  /** The dataset's class colours, when the server knows the dataset. */
  readonly colors: readonly Rgb[] | null;
  /** Why the server offers no training (a model of another kind, a plan with host stages), if it does not. */
  readonly trainingNote: string | null;
}

/** One segmented photo. */
interface Segmentation {
  readonly name: string;
  readonly width: number;
  readonly height: number;
  readonly rgb: Uint8Array;
  readonly classes: Int32Array;
  readonly fitted: readonly [number, number];
  readonly input: Float32Array;
  readonly logits: Float32Array;
  readonly logitsDims: readonly number[];
  readonly seconds: number;
  readonly tuned: boolean;
}

type Session = Awaited<ReturnType<OrtModule["InferenceSession"]["create"]>>;

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

/** What tests and benchmarks read and call (also what a curious user can poke at in the console). */
const page = {
  status: "loading" as "loading" | "ready" | "segmenting" | "failed",
  errors: [] as string[],
  notes: [] as string[],
  backend: "wasm" as Backend,
  threads: 1,
  adapter: "",
  info: undefined as ExportInfo | undefined,
  result: undefined as Segmentation | undefined,
  training: {
    status: "none" as "none" | "loading" | "ready" | "running" | "idle",
    steps: [] as StepRecord[],
    budget: 0,
    threads: 0,
  },
  /** Segments packed RGB pixels given as base64 (tests: the same photo as kappa decodes it). */
  segmentRgb: async (b64: string, height: number, width: number, name = "tensor") =>
    summary(await segment(fromBase64(b64, Uint8Array), height, width, name)),
  /** Segments the last photo again (benchmarks: the model's latency in the tab). */
  segmentAgain: async () => {
    const r = page.result!;
    return summary(await segment(r.rgb, r.height, r.width, r.name));
  },
  /** The last segmentation's arrays as base64, for comparing with kappa. */
  resultArrays: () =>
    page.result && {
      classes: toBase64(page.result.classes),
      input: toBase64(page.result.input),
      logits: toBase64(page.result.logits),
      logitsDims: page.result.logitsDims,
      fitted: page.result.fitted,
    },
};
(globalThis as unknown as { kappaPage: typeof page }).kappaPage = page;

const toBase64 = (a: ArrayBufferView) => {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
};
const fromBase64 = <T>(b64: string, ArrayType: new (b: ArrayBuffer) => T): T =>
  new ArrayType(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer);

const showError = (line: string) => {
  page.errors.push(line);
  const li = document.createElement("li");
  li.textContent = line;
  $("errors").append(li);
};
const showNote = (line: string) => {
  page.notes.push(line);
  const li = document.createElement("li");
  li.textContent = line;
  $("notes").append(li);
};

let ort: OrtModule;
let session: Session | undefined;
let tunedSession: Session | undefined;
let tunedParameters: Map<string, Float32Array> | undefined;
let colors: readonly Rgb[] = [];
let manifest: Manifest;

const fetchBytes = async (url: string) => {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
};

const sessionOptions = () => ({ executionProviders: [page.backend], graphOptimizationLevel: "all" as const });

/** Opens a model file; every problem is one line in the page. */
const openModel = async (bytes: Uint8Array, file: string) => {
  let metadata: Record<string, string>;
  try {
    metadata = onnxMetadata(bytes);
  } catch (e) {
    return showError(`${file}: not an ONNX file (${(e as Error).message})`);
  }
  const info = exportInfo(metadata, file);
  if ("error" in info) return showError(info.error);
  let s: Session;
  try {
    s = await ort.InferenceSession.create(bytes, sessionOptions());
  } catch (e) {
    return showError(describeError(`${file}: cannot open on ${page.backend}`, e));
  }
  if (!s.outputNames.includes("classes")) {
    return showError(
      `${file}: a kappa export without a "classes" output (${s.outputNames.join(", ")}); the page segments ` +
        "semantic exports (panoptic ones need the host merge step)",
    );
  }
  session = s;
  page.info = info;
  colors = manifest.colors?.length === info.classes ? manifest.colors : defaultPalette(info.classes);
  $("model-line").textContent =
    `${file}: ${info.experiment}, ${info.classes} classes, input ${info.height}×${info.width}`;
  $<HTMLInputElement>("photo-input").disabled = false;
};

/** Packed RGB of a photo as kappa decodes it (no EXIF rotation, alpha dropped, colours to sRGB). */
const decodePhoto = async (blob: Blob) => {
  const bitmap = await createImageBitmap(blob, { premultiplyAlpha: "none", imageOrientation: "none" });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext("2d")!;
  ctx.drawImage(bitmap, 0, 0);
  const rgba = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
  const rgb = new Uint8Array(bitmap.width * bitmap.height * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    rgb[j] = rgba[i];
    rgb[j + 1] = rgba[i + 1];
    rgb[j + 2] = rgba[i + 2];
  }
  return { rgb, width: bitmap.width, height: bitmap.height };
};

const useTuned = () => $<HTMLInputElement>("use-tuned").checked && tunedSession !== undefined;

/** Fits, normalizes, runs and maps back one photo; shows the result. */
const segment = async (rgb: Uint8Array, height: number, width: number, name: string) => {
  const info = page.info;
  if (!info || !session) throw new Error("no model is open");
  page.status = "segmenting";
  const { images, fitted } = exportInput(rgb, height, width, info);
  const tuned = useTuned();
  const feeds: Record<string, InstanceType<OrtModule["Tensor"]>> = {
    images: new ort.Tensor("float32", images, [1, 3, info.height, info.width]),
  };
  if (tuned) {
    for (const [n, v] of tunedParameters!) feeds[n] = new ort.Tensor("float32", v, tunedShapes.get(n)!);
  }
  const t0 = performance.now();
  const out = await (tuned ? tunedSession! : session).run(feeds);
  const seconds = (performance.now() - t0) / 1000;
  const classes = mapBack(out.classes.data as BigInt64Array, info.width, fitted, [height, width]);
  const result: Segmentation = {
    name,
    width,
    height,
    rgb,
    classes,
    fitted,
    input: images,
    logits: (await out.logits.getData()) as Float32Array,
    logitsDims: out.logits.dims,
    seconds,
    tuned,
  };
  page.result = result;
  render(result);
  page.status = "ready";
  return result;
};

const summary = (r: Segmentation) => ({
  width: r.width,
  height: r.height,
  seconds: r.seconds,
  present: classShares(r.classes, page.info!.classes).present,
});

/** The overlay (photo and class colours half and half, as `predict` draws it), legend and shares. */
const render = (r: Segmentation) => {
  const canvas = $<HTMLCanvasElement>("overlay");
  canvas.width = r.width;
  canvas.height = r.height;
  const alpha = Number($<HTMLInputElement>("alpha").value) / 100;
  const image = new ImageData(r.width, r.height);
  for (let i = 0; i < r.classes.length; i++) {
    const c = colors[r.classes[i]] ?? [0, 0, 0];
    for (let ch = 0; ch < 3; ch++) {
      image.data[4 * i + ch] = Math.round((1 - alpha) * r.rgb[3 * i + ch] + alpha * c[ch]);
    }
    image.data[4 * i + 3] = 255;
  }
  canvas.getContext("2d")!.putImageData(image, 0, 0);
  const { counts, present } = classShares(r.classes, page.info!.classes);
  const legend = $("legend");
  legend.replaceChildren(...present.map((c) => {
    const li = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = `rgb(${colors[c].join(",")})`;
    const share = (100 * counts[c]) / r.classes.length;
    li.append(swatch, `${page.info!.classNames[c]} ${share < 0.1 ? "< 0.1" : share.toFixed(1)} %`);
    li.dataset.class = String(c);
    return li;
  }));
  $("speed").textContent = `${r.name}: ${r.width}×${r.height}, fitted ${r.fitted[0]}×${r.fitted[1]}; ` +
    `${(r.seconds * 1000).toFixed(0)} ms on ${backendLine()}${r.tuned ? ", fine-tuned state" : ""}`;
  $<HTMLButtonElement>("download-png").disabled = false;
};

const backendLine = () =>
  page.backend === "webgpu"
    ? `WebGPU (${page.adapter})`
    : `wasm, ${page.threads} thread${page.threads > 1 ? "s" : ""}`;

const hover = (ev: MouseEvent) => {
  const r = page.result;
  if (!r) return;
  const canvas = ev.currentTarget as HTMLCanvasElement;
  const x = Math.min(r.width - 1, Math.floor((ev.offsetX * r.width) / canvas.clientWidth));
  const y = Math.min(r.height - 1, Math.floor((ev.offsetY * r.height) / canvas.clientHeight));
  const c = r.classes[y * r.width + x];
  $("hover").textContent = `(${x}, ${y}): ${page.info!.classNames[c]} (class ${c})`;
};

const download = (data: Uint8Array, name: string, type: string) => {
  const url = URL.createObjectURL(new Blob([data as BlobPart], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
};

const segmentFile = async (file: Blob, name: string) => {
  if (name.toLowerCase().endsWith(".onnx")) return openModel(new Uint8Array(await file.arrayBuffer()), name);
  if (!session) return showError(`${name}: no model is open to segment it with`);
  let photo;
  try {
    photo = await decodePhoto(file);
  } catch (e) {
    page.status = "ready";
    return showError(`${name}: cannot decode this image (${(e as Error).message || e})`);
  }
  try {
    await segment(photo.rgb, photo.height, photo.width, name);
  } catch (e) {
    page.status = "ready";
    showError(describeError(`${name}: segmenting`, e));
  }
};

// ── Camera: a live preview and a button that segments the current frame.
let stream: MediaStream | undefined;
const startCamera = async () => {
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true });
  } catch (e) {
    return showError(`camera: ${(e as Error).message || e}`);
  }
  const video = $<HTMLVideoElement>("video");
  video.srcObject = stream;
  video.hidden = false;
  $("capture").hidden = false;
  await video.play();
};
const capture = async () => {
  const video = $<HTMLVideoElement>("video");
  const canvas = new OffscreenCanvas(video.videoWidth, video.videoHeight);
  canvas.getContext("2d")!.drawImage(video, 0, 0);
  await segmentFile(await canvas.convertToBlob({ type: "image/png" }), "camera.png");
};

// ── Fine-tuning in a worker.
let worker: Worker | undefined;
let settings: TrainingSettings | undefined;
const tunedShapes = new Map<string, readonly number[]>();

const trainStatus = (line: string) => ($("train-status").textContent = line);

const stepLine = (r: StepRecord & { done: number }) => {
  const recent = page.training.steps.slice(-5);
  const mean = recent.reduce((s, x) => s + x.seconds, 0) / recent.length;
  return `step ${r.step} (${r.done} of ${page.training.budget} in this tab): loss ${r.loss.toFixed(4)}, ` +
    `${mean.toFixed(2)} s per step (${(1 / mean).toFixed(2)} steps/s), lr ${r.lr.toExponential(2)}`;
};

const initTraining = async () => {
  page.training.status = "loading";
  settings = (await (await fetch(manifest.training!)).json()) as TrainingSettings;
  page.training.budget = settings.lr.length;
  $("train-source").textContent =
    `${settings.experiment} from ${settings.source}; ${settings.shard.batches} ` +
    `batches of ${settings.batchSize} crops (${settings.cropSize.join("×")}) from the training loader; ` +
    `up to ${settings.lr.length} steps (${settings.schedule}).`;
  for (const s of settings.state) tunedShapes.set(s.name, s.shape);
  page.training.status = "ready";
  $<HTMLButtonElement>("train-start").disabled = false;
  trainStatus("ready: the step graph and the state load when training starts");
};

/** The worker, started (and the training files loaded into it) on the first Train. */
const startWorker = () => {
  if (worker) return worker;
  trainStatus("loading the step graph, the state and the shard…");
  worker = new Worker("/app/train_worker.js", { type: "module" });
  worker.onerror = (ev) => showError(`training worker: ${ev.message}`);
  worker.onmessage = (ev) => {
    const m = ev.data;
    if (m.type === "loaded") {
      page.training.threads = m.threads;
      trainStatus(`loaded: training on wasm, ${m.threads} thread${m.threads > 1 ? "s" : ""}`);
      $<HTMLButtonElement>("download-checkpoint").disabled = false;
    } else if (m.type === "step") {
      page.training.steps.push(m);
      drawLossChart(
        $<HTMLCanvasElement>("loss-chart"),
        page.training.steps.map((s) => s.step),
        page.training.steps.map((s) => s.loss),
      );
      trainStatus(stepLine(m));
    } else if (m.type === "idle") {
      page.training.status = "idle";
      $<HTMLButtonElement>("train-start").disabled = m.done >= m.budget;
      $<HTMLButtonElement>("train-start").textContent = m.done > 0 ? "Resume" : "Train";
      $<HTMLButtonElement>("train-pause").disabled = true;
      const last = page.training.steps.at(-1);
      trainStatus(
        m.budget === 0
          ? "training is unavailable here (the error above says why)"
          : (m.done >= m.budget ? "step budget used up; " : "paused; ") +
            (last ? stepLine({ ...last, done: m.done }) : "no steps yet"),
      );
      if (m.done > 0 && manifest.infer) refreshTuned();
    } else if (m.type === "checkpoint") {
      download(
        m.data,
        `${settings!.experiment}-step-${String(m.step).padStart(6, "0")}.safetensors`,
        "application/octet-stream",
      );
    } else if (m.type === "parameters") {
      tunedParameters = new Map(m.values);
      $<HTMLInputElement>("use-tuned").disabled = false;
      $("use-tuned-label").title = `the state after step ${m.step}`;
    } else if (m.type === "error") {
      showError(m.message);
    }
  };
  worker.postMessage({
    type: "load",
    settings: manifest.training,
    step: "/files/train-step.onnx",
    state: "/files/state.safetensors",
    shard: "/files/shard.safetensors",
    threads: page.threads,
  });
  return worker;
};

/** Opens the inference graph that reads the parameters (once) and asks the worker for them. */
const refreshTuned = async () => {
  if (!tunedSession) {
    try {
      tunedSession = await ort.InferenceSession.create(await fetchBytes(manifest.infer!), sessionOptions());
    } catch (e) {
      return showError(describeError("infer.onnx: cannot open", e));
    }
  }
  worker!.postMessage({ type: "parameters", names: settings!.inferParameters });
};

const init = async () => {
  const params = new URLSearchParams(location.search);
  try {
    manifest = await (await fetch("/files/manifest.json")).json();
  } catch (e) {
    page.status = "failed";
    return showError(`the server's manifest: ${(e as Error).message}`);
  }
  document.title = `kappa — ${manifest.title}`;
  $("source-line").textContent = manifest.source;
  const gpu = await webGpuAdapter();
  page.adapter = gpu.name;
  const asked = params.get("backend");
  page.backend = asked === "webgpu" || asked === "wasm" ? asked : gpu.real ? "webgpu" : "wasm";
  if (page.backend === "webgpu" && !gpu.available) {
    showError(`WebGPU asked for, but this browser offers no adapter (${gpu.name}); using wasm`);
    page.backend = "wasm";
  } else if (!asked && gpu.available && !gpu.real) {
    showNote(
      `WebGPU adapter "${gpu.name}" is a CPU fallback, slower than wasm: using wasm (?backend=webgpu forces it)`,
    );
  }
  const asked_threads = Number(params.get("threads")) || undefined;
  page.threads = wasmThreads(asked_threads);
  if (!threadsAvailable()) {
    showNote(
      "wasm threads are unavailable (the page is not cross-origin isolated: COOP/COEP headers missing); " +
        "running on 1 thread",
    );
  }
  try {
    ort = await loadOrt(page.backend, page.threads);
  } catch (e) {
    page.status = "failed";
    return showError(describeError(`onnxruntime-web (${page.backend})`, e));
  }
  $("backend-line").textContent = backendLine();
  if (manifest.model) {
    try {
      await openModel(await fetchBytes(manifest.model), manifest.model.split("/").pop()!);
    } catch (e) {
      showError(describeError(`${manifest.model}: cannot load`, e));
    }
  }
  if (manifest.training) {
    $("finetune").hidden = false;
    await initTraining().catch((e) => showError(describeError("training.json", e)));
  } else if (manifest.trainingNote) {
    $("finetune").hidden = false;
    $("train-source").textContent = manifest.trainingNote;
  }
  page.status = "ready";
};

// ── Wiring.
$<HTMLInputElement>("photo-input").addEventListener("change", (ev) => {
  const f = (ev.target as HTMLInputElement).files?.[0];
  if (f) segmentFile(f, f.name);
});
$<HTMLInputElement>("model-input").addEventListener("change", (ev) => {
  const f = (ev.target as HTMLInputElement).files?.[0];
  if (f) f.arrayBuffer().then((b) => openModel(new Uint8Array(b), f.name));
});
for (const name of ["dragover", "dragenter"]) {
  document.body.addEventListener(name, (ev) => {
    ev.preventDefault();
    $("drop").classList.add("over");
  });
}
document.body.addEventListener("dragleave", () => $("drop").classList.remove("over"));
document.body.addEventListener("drop", (ev) => {
  ev.preventDefault();
  $("drop").classList.remove("over");
  const f = ev.dataTransfer?.files[0];
  if (f) segmentFile(f, f.name);
});
$("overlay").addEventListener("mousemove", hover);
$("alpha").addEventListener("input", () => page.result && render(page.result));
$("download-png").addEventListener("click", async () => {
  const r = page.result!;
  const stem = r.name.replace(/\.[^.]*$/, "");
  download(
    await classMapPng(r.classes, r.width, r.height, page.info!.classes),
    `${stem}-classes.png`,
    "image/png",
  );
});
if (typeof navigator.mediaDevices?.getUserMedia === "function") {
  $("camera").addEventListener("click", startCamera);
} else {
  $<HTMLButtonElement>("camera").disabled = true;
  $("camera").title = "this browser gives the page no camera";
}
$("capture").addEventListener("click", capture);
$("use-tuned").addEventListener("change", () => {
  const r = page.result;
  if (r) segment(r.rgb, r.height, r.width, r.name).catch((e) => showError(describeError(r.name, e)));
});
$("train-start").addEventListener("click", () => {
  const steps = Math.max(1, Math.floor(Number($<HTMLInputElement>("train-steps").value) || 1));
  page.training.status = "running";
  $<HTMLButtonElement>("train-start").disabled = true;
  $<HTMLButtonElement>("train-pause").disabled = false;
  trainStatus(`running ${steps} steps…`);
  startWorker().postMessage({ type: "run", steps });
});
$("train-pause").addEventListener("click", () => worker!.postMessage({ type: "pause" }));
$("download-checkpoint").addEventListener("click", () => worker!.postMessage({ type: "checkpoint" }));

init().catch((e) => {
  page.status = "failed";
  showError(describeError("the page", e));
});
