/**
 * The virtual environment of the PyTorch 2 and JAX peers (`bench/.venv-peers`, git-ignored), created and
 * filled with pip on first use. When pip cannot install them, the bench says so in one line and runs
 * with Debian's PyTorch 1.13 peer alone (bench/peer_setup.ts).
 *
 * PyTorch: a `+cpu` wheel where pip's find-links folders hold one (pip's default CUDA-built wheel
 * imports only with NVIDIA's runtime wheels beside it, which are gigabytes the CPU never uses); else
 * `torch` as pip resolves it. When pip's configured extra indexes are all local (`file://`), the first
 * one replaces the default index, so that pip does not wait on a host it cannot reach.
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { PYTHON } from "./peer_setup.ts";

export const VENV = fileURLToPath(new URL("./.venv-peers", import.meta.url));
const VENV_PYTHON = `${VENV}/bin/python`;
const OTHER_PACKAGES = ["jax", "jaxlib", "numpy"] as const;

const run = (cmd: string, args: readonly string[], timeoutMs = 30 * 60_000) => {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 * 2 ** 20 });
  return { ok: r.status === 0, stdout: r.stdout ?? "", stderr: r.stderr ?? String(r.error ?? "") };
};

/** What the peers' environment can run. */
export interface PeerVenv {
  readonly python: string;
  readonly torch?: string;
  readonly jax?: string;
  /** One line per package set that could not be installed or imported. */
  readonly missing: readonly string[];
}

const version = (module: string): string | undefined => {
  const r = run(VENV_PYTHON, ["-c", `import ${module}; print(${module}.__version__)`], 120_000);
  return r.ok ? r.stdout.trim() : undefined;
};

/** pip's configured value of `key` (e.g. "global.extra-index-url"), split on whitespace. */
const pipConfig = (key: string): string[] => {
  const r = run(PYTHON, ["-m", "pip", "config", "get", key], 60_000);
  return r.ok ? r.stdout.trim().split(/\s+/).filter(Boolean) : [];
};

/** The index options: the local indexes alone when pip's extra indexes are all local. */
export const indexOptions = (extraIndexes: readonly string[]): string[] =>
  extraIndexes.length && extraIndexes.every((u) => u.startsWith("file://"))
    ? ["--index-url", extraIndexes[0], ...extraIndexes.slice(1).flatMap((u) => ["--extra-index-url", u])]
    : ["--retries", "1", "--timeout", "30"];

/** `torch==<version>+cpu` for the newest `+cpu` wheel in the find-links folders, else `torch`. */
export const torchRequirement = (wheelNames: readonly string[]): string => {
  const versions = wheelNames.flatMap((n) => n.match(/^torch-(\d+(?:\.\d+)*)\+cpu-/)?.[1] ?? []);
  const newest = versions.sort((a, b) => {
    const [x, y] = [a.split(".").map(Number), b.split(".").map(Number)];
    for (let i = 0; i < Math.max(x.length, y.length); i++) {
      if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
    }
    return 0;
  }).at(-1);
  return newest ? `torch==${newest}+cpu` : "torch";
};

const wheelsIn = (folders: readonly string[]): string[] =>
  folders.flatMap((f) => {
    try {
      return [...Deno.readDirSync(f.replace(/^file:\/\//, ""))].map((e) => e.name);
    } catch {
      return [];
    }
  });

const pipInstall = (packages: readonly string[]): { ok: boolean; error: string } => {
  const options = indexOptions(pipConfig("global.extra-index-url"));
  const r = run(VENV_PYTHON, ["-m", "pip", "install", "--quiet", ...options, ...packages]);
  const last = r.stderr.trim().split("\n").filter((l) => !l.startsWith("WARNING")).at(-1) ?? "";
  return { ok: r.ok, error: last };
};

/** Creates and fills the environment where needed; never throws (what failed is in `missing`). */
export const ensurePeerVenv = (log: (line: string) => void): PeerVenv => {
  const missing: string[] = [];
  try {
    Deno.statSync(VENV_PYTHON);
  } catch {
    log(`creating ${VENV} for the PyTorch 2 and JAX peers…`);
    const r = run(PYTHON, ["-m", "venv", VENV]);
    if (!r.ok) {
      const why = r.stderr.trim().split("\n").at(-1);
      return { python: VENV_PYTHON, missing: [`no virtual environment (${PYTHON} -m venv: ${why})`] };
    }
  }
  let torch = version("torch"), jax = version("jax");
  if (!torch) {
    const requirement = torchRequirement(wheelsIn(pipConfig("global.find-links")));
    log(`pip install ${requirement} into ${VENV} (once)…`);
    const r = pipInstall([requirement]);
    torch = version("torch");
    if (!torch) {
      missing.push(`PyTorch 2: pip install ${requirement} failed (${r.error || "no torch after it"})`);
    }
  }
  if (!jax) {
    log(`pip install ${OTHER_PACKAGES.join(" ")} into ${VENV} (once)…`);
    const r = pipInstall(OTHER_PACKAGES);
    jax = version("jax");
    if (!jax) {
      missing.push(`JAX: pip install ${OTHER_PACKAGES.join(" ")} failed (${r.error || "no jax after it"})`);
    }
  }
  return { python: VENV_PYTHON, torch, jax, missing };
};
