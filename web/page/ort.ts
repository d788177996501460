/**
 * onnxruntime-web in the page: loaded at run time from the server's `/ort/` (the pinned npm package's
 * files, never a CDN), the wasm build for the CPU and the WebGPU build for a GPU. Types come from the
 * same package; the module itself is not bundled into the page.
 */
import type * as Ort from "onnxruntime-web";

export type OrtModule = typeof Ort;
export type Backend = "wasm" | "webgpu";

const BUILDS: Record<Backend, string> = {
  wasm: "/ort/ort.wasm.min.mjs",
  webgpu: "/ort/ort.webgpu.min.mjs",
};

/** Whether this page may use wasm threads: it must be cross-origin isolated (COOP + COEP headers). */
export const threadsAvailable = (): boolean =>
  typeof SharedArrayBuffer !== "undefined" &&
  (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated ===
    true;

/** The wasm threads to use: `requested`, else one per core (at most 8); 1 without cross-origin isolation. */
export const wasmThreads = (requested?: number): number =>
  threadsAvailable() ? requested ?? Math.min(8, Math.max(1, navigator.hardwareConcurrency || 1)) : 1;

/** Loads the onnxruntime-web build for `backend`, its wasm files from `/ort/`, with `threads` wasm threads. */
export const loadOrt = async (backend: Backend, threads: number): Promise<OrtModule> => {
  const url = BUILDS[backend];
  const ort = (await import(url)) as OrtModule;
  ort.env.wasm.wasmPaths = "/ort/";
  ort.env.wasm.numThreads = threads;
  ort.env.logLevel = "error";
  return ort;
};

/**
 * Whether the browser offers a WebGPU adapter, and whether it is a real GPU: headless Chromium without a
 * GPU offers only SwiftShader (a CPU fallback, far slower than wasm), which the page does not pick by itself.
 */
export const webGpuAdapter = async (): Promise<
  { readonly available: boolean; readonly real: boolean; readonly name: string }
> => {
  const gpu = (navigator as { gpu?: { requestAdapter: () => Promise<unknown> } }).gpu;
  if (!gpu) return { available: false, real: false, name: "no navigator.gpu" };
  const adapter = await gpu.requestAdapter().catch(() => null) as
    | {
      info?: { vendor?: string; architecture?: string; description?: string; isFallbackAdapter?: boolean };
      isFallbackAdapter?: boolean;
    }
    | null;
  if (!adapter) return { available: false, real: false, name: "no adapter" };
  const info = adapter.info ?? {};
  const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") ||
    "unknown adapter";
  const fallback = info.isFallbackAdapter === true || adapter.isFallbackAdapter === true ||
    /swiftshader/i.test(name);
  return { available: true, real: !fallback, name };
};
