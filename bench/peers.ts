/**
 * The PyTorch 2 and JAX peers of `deno task bench perf`: which sides there are, the thread settings each
 * is tried in, running one side in its own process, and picking each side's fastest thread setting.
 */
import { spawnSync } from "node:child_process";
import type { Repeats } from "./measure.ts";
import { peerScript } from "./peer.ts";
import { summarize } from "../figures/stats.ts";

export type SideName = "eager" | "compile" | "eager-bf16" | "compile-bf16" | "jax";

export interface Side {
  readonly name: SideName;
  /** How the report names it. */
  readonly label: string;
  readonly framework: "torch" | "jax";
  readonly precision: "fp32" | "bf16";
  /** Compiled before its first step (the first step's time is reported apart). */
  readonly compiled: boolean;
}

export const SIDES: readonly Side[] = [
  { name: "eager", label: "PyTorch 2 eager", framework: "torch", precision: "fp32", compiled: false },
  { name: "compile", label: "torch.compile", framework: "torch", precision: "fp32", compiled: true },
  { name: "jax", label: "JAX jit (whole step)", framework: "jax", precision: "fp32", compiled: true },
  {
    name: "eager-bf16",
    label: "PyTorch 2 eager, bf16 autocast",
    framework: "torch",
    precision: "bf16",
    compiled: false,
  },
  {
    name: "compile-bf16",
    label: "torch.compile, bf16 autocast",
    framework: "torch",
    precision: "bf16",
    compiled: true,
  },
];

/** A thread setting a side is tried in (besides the thread count, which is T on every side). */
export interface ThreadConfig {
  readonly label: string;
  readonly env: Readonly<Record<string, string>>;
  /** JAX: bind the process to the first T cores (PyTorch pins through OMP_PROC_BIND in `env`). */
  readonly pin: boolean;
}

const BIND = { OMP_PROC_BIND: "close", OMP_PLACES: "cores" };

/**
 * PyTorch's OpenMP (GNU libgomp in pip's wheels) spins idle threads by default; Debian's build needed
 * PASSIVE (two pools on two cores), pip's has one pool and may not. Pinning keeps a thread on its core.
 */
export const TORCH_CONFIGS: readonly ThreadConfig[] = [
  { label: "OpenMP default (idle threads spin)", env: {}, pin: false },
  { label: "OMP_WAIT_POLICY=PASSIVE", env: { OMP_WAIT_POLICY: "PASSIVE" }, pin: false },
  { label: "spin, pinned (OMP_PROC_BIND=close, OMP_PLACES=cores)", env: BIND, pin: false },
  {
    label: "PASSIVE, pinned (OMP_PROC_BIND=close, OMP_PLACES=cores)",
    env: { ...BIND, OMP_WAIT_POLICY: "PASSIVE" },
    pin: false,
  },
];

/** XLA:CPU has its own pool (no OpenMP); the one choice is whether the process is bound to T cores. */
export const JAX_CONFIGS: readonly ThreadConfig[] = [
  { label: "XLA default, not pinned", env: {}, pin: false },
  { label: "pinned to the first T cores (sched_setaffinity)", env: {}, pin: true },
];

export const configsOf = (side: Side): readonly ThreadConfig[] =>
  side.framework === "jax" ? JAX_CONFIGS : TORCH_CONFIGS;

/** What a side's process answers (bench/peer/segmenter_torch2.py, segmenter_jax.py). */
export interface SideResult {
  /** "2.13.0+cpu" or "JAX 0.10.2". */
  readonly torch: string;
  /** BLAS / oneDNN / XLA backend, in one line. */
  readonly backend: string;
  readonly torchThreads: number;
  /** Loss before each step: the first (compiling) step, then the warm-up and timed steps. */
  readonly losses?: readonly number[];
  readonly stepMs?: readonly number[];
  /** Wall seconds of the first step (for compiled sides: tracing and compiling the step). */
  readonly firstStepSeconds?: number;
  readonly rssBeforeKiB?: number;
  /** The process's peak RSS after its training steps (VmHWM: Python, the framework, model, steps). */
  readonly peakRssKiB?: number;
  readonly inferMs?: readonly number[];
}

export interface SideRequest {
  readonly inputs: string;
  readonly threads: number;
  readonly train: Repeats | null;
  readonly infer: Repeats | null;
}

/**
 * Runs `side` in a fresh process with `config`; `env` adds the bench-wide settings (the inductor cache).
 * Throws with the script's last lines of stderr when it fails.
 */
export const runSide = (
  python: string,
  side: Side,
  config: ThreadConfig,
  request: SideRequest,
  env: Readonly<Record<string, string>> = {},
): SideResult => {
  const script = peerScript(side.framework === "jax" ? "segmenter_jax.py" : "segmenter_torch2.py");
  const t = String(request.threads);
  const r = spawnSync(python, [script], {
    input: JSON.stringify({ ...request, side: side.name, pin: config.pin }),
    encoding: "utf8",
    maxBuffer: 16 * 2 ** 20,
    env: { ...process.env, OMP_NUM_THREADS: t, MKL_NUM_THREADS: t, ...env, ...config.env },
  });
  if (r.status !== 0) {
    throw new Error(
      `${side.label}: ${script} failed (${r.status ?? r.error}):\n${(r.stderr ?? "").slice(-3000)}`,
    );
  }
  return JSON.parse(r.stdout) as SideResult;
};

/** The median step time of each config tried, and the fastest config's index. */
export interface Tuning {
  readonly tried: readonly { readonly config: ThreadConfig; readonly medianMs: number }[];
  readonly best: number;
}

export const bestConfig = (tried: Tuning["tried"]): Tuning => ({
  tried,
  best: tried.reduce((b, t, i) => (t.medianMs < tried[b].medianMs ? i : b), 0),
});

/** Tries every config of `side` at `threads` (one short training run each); the fastest wins. */
export const tuneSide = (
  python: string,
  side: Side,
  inputs: string,
  threads: number,
  repeats: Repeats,
  env: Readonly<Record<string, string>>,
  configs: readonly ThreadConfig[] = configsOf(side),
): { tuning: Tuning; first: SideResult } => {
  let first: SideResult | undefined;
  const tried = configs.map((config) => {
    const r = runSide(python, side, config, { inputs, threads, train: repeats, infer: null }, env);
    first ??= r;
    return { config, medianMs: summarize(r.stepMs ?? []).median };
  });
  return { tuning: bestConfig(tried), first: first! };
};
