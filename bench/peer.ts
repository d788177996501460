/** Runs a PyTorch peer script (bench/peer/*.py) with a JSON request and reads its JSON answer. */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Repeats } from "./measure.ts";

/** The path of the peer script `name` in bench/peer/. */
export const peerScript = (name: string): string => fileURLToPath(new URL(`./peer/${name}`, import.meta.url));

const MLP_SCRIPT = peerScript("mlp_step.py");

export interface PeerRequest {
  /** safetensors file with our initial parameters and the batch (see `peerInputs`). */
  readonly inputs: string;
  readonly threads: number;
  readonly warmup: number;
  readonly runs: number;
  readonly lr: number;
  readonly momentum: number;
  /** torch.mm sizes to time, n×n · n×n. */
  readonly matmul: readonly number[];
  readonly matmulRepeats: Repeats;
}

/** What every peer script reports about itself: versions, the BLAS it runs on, thread counts. */
export interface PeerIdentity {
  readonly torch: string;
  readonly blas: {
    /** BLAS/LAPACK libraries mapped into the peer process, symlinks resolved. */
    readonly libraries: readonly string[];
    readonly openblasConfig: string | null;
    readonly openblasThreads: number | null;
    /** PyTorch's build setting, e.g. "BLAS_INFO=generic" (calls whatever libblas.so.3 is). */
    readonly torchBuild: string;
  };
  readonly torchThreads: number;
}

export interface PeerResult extends PeerIdentity {
  /** Loss before each step, warm-up steps first. */
  readonly losses: readonly number[];
  /** Milliseconds of each timed step. */
  readonly stepMs: readonly number[];
  readonly matmul: readonly { readonly n: number; readonly ms: readonly number[] }[];
}

/**
 * Environment of the peer: `threads` threads everywhere it could use more, PyTorch's intra-op pool
 * (OpenMP) and OpenBLAS's own pool, which `torch.set_num_threads` does not reach (the script also pins
 * OpenBLAS through its API and reports the counts it ended up with).
 *
 * Debian's PyTorch uses OpenMP and the pthread OpenBLAS its own threads: two pools on the same cores.
 * By default idle OpenMP threads spin, taking the cores from the OpenBLAS threads inside a GEMM; on this
 * 2-core machine that made PyTorch's T = 2 step 2.5× slower and erratic. Passive waiting removes the
 * contention, so the peer runs with it.
 */
export const peerEnv = (threads: number): Record<string, string> => ({
  OMP_NUM_THREADS: String(threads),
  OPENBLAS_NUM_THREADS: String(threads),
  MKL_NUM_THREADS: String(threads),
  OMP_WAIT_POLICY: "PASSIVE",
});

/** Runs the MLP peer script with `request` on stdin; returns its JSON answer. */
export const runPeer = (python: string, request: PeerRequest): PeerResult =>
  runPeerScript<PeerResult>(python, MLP_SCRIPT, request);

/** Runs `script` with `request` (which names its thread count) on stdin; returns its JSON answer. */
export const runPeerScript = <A>(
  python: string,
  script: string,
  request: { readonly threads: number },
): A => {
  const r = spawnSync(python, [script], {
    input: JSON.stringify(request),
    encoding: "utf8",
    maxBuffer: 16 * 2 ** 20,
    env: { ...process.env, ...peerEnv(request.threads) },
  });
  if (r.status !== 0) {
    throw new Error(`${python} ${script} failed (${r.status ?? r.error}):\n${(r.stderr ?? "").slice(-3000)}`);
  }
  return JSON.parse(r.stdout) as A;
};

/** The BLAS a peer ran on, in one line for the report ("NOT OpenBLAS …" when it is another). */
export const describeBlas = (peer: PeerIdentity, alternative: string | undefined): string => {
  const { libraries, openblasConfig, torchBuild } = peer.blas;
  const what = openblasConfig ?? "NOT OpenBLAS (slower than the pthread OpenBLAS this benchmark expects)";
  return `${what}; mapped: ${libraries.join(", ")}; libblas.so.3 → ${alternative ?? "?"}; ` +
    `PyTorch ${torchBuild || "BLAS_INFO unknown"}`;
};
