/**
 * The PyTorch peer: Debian's `python3-torch` (PyTorch 1.13, eager) on OpenBLAS's pthread build, installed
 * with apt-get when missing.
 *
 * Debian installs `python3-torch` for the system interpreter, `/usr/bin/python3`; a `python3` earlier on
 * PATH (pyenv, a venv) does not see it, so the peer always runs that interpreter. `libopenblas0-pthread`
 * is installed explicitly: without it `libblas.so.3` may resolve to the reference BLAS, which is several
 * times slower and would flatter us.
 */
import { spawnSync } from "node:child_process";

export const PYTHON = "/usr/bin/python3";
const PACKAGES = ["python3-torch", "libopenblas0-pthread"] as const;
const BLAS_ALTERNATIVE = "libblas.so.3-x86_64-linux-gnu";

const run = (cmd: string, args: readonly string[], env: Record<string, string> = {}) => {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...env } });
  return { ok: r.status === 0, stdout: r.stdout ?? "", stderr: r.stderr ?? String(r.error ?? "") };
};

const hasTorch = (): boolean => run(PYTHON, ["-c", "import torch"]).ok;

const isInstalled = (pkg: string): boolean =>
  run("dpkg-query", ["-W", "-f=${Status}", pkg]).stdout.includes("install ok installed");

const aptInstall = (packages: readonly string[]): void => {
  console.error(`bench: installing ${packages.join(" ")} with apt-get (once)…`);
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const install = () => run("apt-get", ["install", "-y", "--no-install-recommends", ...packages], env);
  let r = install();
  // A stale or empty package index is the usual reason; refresh it once and retry.
  if (!r.ok) {
    run("apt-get", ["update"], env);
    r = install();
  }
  if (!r.ok) throw new Error(`apt-get install ${packages.join(" ")} failed:\n${r.stderr.slice(-2000)}`);
};

/** Makes sure the peer can run; returns the Python interpreter to use. */
export const ensurePeer = (): string => {
  const missing = PACKAGES.filter((pkg) => !isInstalled(pkg) || (pkg === "python3-torch" && !hasTorch()));
  if (missing.length) aptInstall(missing);
  if (!hasTorch()) throw new Error(`${PYTHON} cannot import torch after installing ${PACKAGES.join(", ")}`);
  return PYTHON;
};

/** The file that the system's `libblas.so.3` currently points to (Debian alternatives), if known. */
export const blasAlternative = (): string | undefined => {
  const r = run("update-alternatives", ["--display", BLAS_ALTERNATIVE]);
  return r.stdout.match(/link currently points to (\S+)/)?.[1];
};
