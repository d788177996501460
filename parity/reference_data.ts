/**
 * The official code's outputs for the parity checks: `reference.py` (beside this file) run by a Python
 * that has PyTorch, NumPy and SciPy, its safetensors file read back.
 *
 * The Python: `$KAPPA_PARITY_PYTHON`, else `.venv-ci/bin/python` (made by `.ci/setup`), else `python3`.
 * The official code: `$KAPPA_REFERENCE`, else `../shared/reference` (beside the repository); it is
 * imported from there at run time and never copied.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Effect } from "effect";
import { decodeSafetensors, type Tensor as StoredTensor } from "../io/safetensors.ts";

export type Method = "rankseg" | "kmax";

const SCRIPT = fileURLToPath(new URL("./reference.py", import.meta.url));
const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The official code's folder. */
export const referenceFolder = (): string =>
  Deno.env.get("KAPPA_REFERENCE") ?? resolve(ROOT, "..", "shared", "reference");

/** A Python that imports torch, numpy and scipy, or why there is none. */
export const findPython = async (): Promise<{ python?: string; version?: string; reason: string }> => {
  const candidates = [Deno.env.get("KAPPA_PARITY_PYTHON"), join(ROOT, ".venv-ci/bin/python"), "python3"]
    .filter((p): p is string => p !== undefined && (!p.includes("/") || existsSync(p)));
  for (const python of candidates) {
    try {
      const r = await new Deno.Command(python, {
        args: ["-c", "import torch, numpy, scipy; print(torch.__version__)"],
        stdout: "piped",
        stderr: "null",
      }).output();
      if (r.success) return { python, version: new TextDecoder().decode(r.stdout).trim(), reason: "" };
    } catch {
      // not executable: try the next one
    }
  }
  return {
    reason: `no Python with torch, numpy and scipy (tried ${candidates.join(", ")}); run .ci/setup or set ` +
      "KAPPA_PARITY_PYTHON",
  };
};

/** One tensor of the reference file, as float64 (floats) or bigint (integers). */
export interface RefTensor {
  readonly shape: readonly number[];
  readonly data: Float64Array | BigInt64Array;
}

/** The reference outputs of one method: its tensors by name and each case's configuration. */
export interface Reference {
  readonly method: Method;
  readonly torch: string;
  /** Case name → the configuration reference.py recorded for it. */
  readonly cases: Readonly<Record<string, Record<string, unknown>>>;
  readonly has: (name: string) => boolean;
  /** The tensor `name`; throws naming it when absent (a harness error, not a parity difference). */
  readonly get: (name: string) => RefTensor;
  /** Floats of `name` (throws for an integer tensor). */
  readonly floats: (name: string) => Float64Array;
  /** Integers of `name` as numbers (throws for a float tensor). */
  readonly ints: (name: string) => number[];
  /** Tensor names under `prefix` (the prefix removed). */
  readonly under: (prefix: string) => string[];
}

const toRef = (t: StoredTensor): RefTensor => {
  if (t.data instanceof BigInt64Array) return { shape: t.shape, data: t.data };
  if (t.data instanceof Float64Array) return { shape: t.shape, data: t.data };
  if (t.data instanceof Float32Array) return { shape: t.shape, data: Float64Array.from(t.data) };
  throw new Error(`reference: unexpected ${t.dtype} tensor`);
};

/** Reads `<dir>/<method>.safetensors` as written by reference.py. */
export const readReference = async (method: Method, file: string): Promise<Reference> => {
  const bytes = new Uint8Array(await readFile(file));
  const decoded = await Effect.runPromise(decodeSafetensors(bytes, file));
  const tensors = new Map(Object.entries(decoded.tensors).map(([k, t]) => [k, toRef(t)]));
  const get = (name: string) => {
    const t = tensors.get(name);
    if (!t) throw new Error(`${file}: no tensor "${name}" (reference.py and the parity cases disagree)`);
    return t;
  };
  return {
    method,
    torch: decoded.metadata.torch ?? "unknown",
    cases: JSON.parse(decoded.metadata.cases ?? "{}"),
    has: (name) => tensors.has(name),
    get,
    floats: (name) => {
      const t = get(name);
      if (!(t.data instanceof Float64Array)) throw new Error(`${file}: "${name}" holds integers`);
      return t.data;
    },
    ints: (name) => {
      const t = get(name);
      if (!(t.data instanceof BigInt64Array)) throw new Error(`${file}: "${name}" holds floats`);
      return Array.from(t.data, Number);
    },
    under: (prefix) =>
      [...tensors.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length)),
  };
};

/**
 * Runs reference.py for `method` with `python` into a temporary folder and reads its output; the
 * folder is removed afterwards. Fails with the script's last error line.
 */
export const runReference = async (method: Method, python: string): Promise<Reference> => {
  const dir = await mkdtemp(join(tmpdir(), `kappa-parity-${method}-`));
  try {
    const r = await new Deno.Command(python, {
      args: [SCRIPT, "--method", method, "--out", dir, "--reference", referenceFolder()],
      stdout: "piped",
      stderr: "piped",
      env: { OMP_NUM_THREADS: "1" },
    }).output();
    if (!r.success) {
      const err = new TextDecoder().decode(r.stderr).trim().split("\n").at(-1);
      throw new Error(`parity/reference.py --method ${method} failed: ${err}`);
    }
    return await readReference(method, join(dir, `${method}.safetensors`));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};
