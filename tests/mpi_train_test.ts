/**
 * Data-parallel training over MPI, end to end through the command line: N ranks with a per-rank batch B
 * train the same run as one process with batch N·B, to float32 summation order — losses of every step and
 * the final state (parameters and AdamW moments) — launched by `train --ranks 2` (mpirun) and by
 * `srun --mpi=pmix`; a LarvSeg run whose losses divide by data-dependent counts (labelled pixels, labelled
 * (image, class) pairs; a mixed batch and the cross-image memory bank); a run resumed with another rank
 * count; a killed rank; a missing MPI library and a rank count that does not fit; webgpu ranks.
 *
 * Tolerances, measured on this setup (2026-12-07, AMD EPYC, 2 cores): the losses of 20 AdamW steps agreed
 * within 2.1e-7 relative and the final state within 5.2e-6 absolute (the one-process and 2-rank gradient
 * sums differ in order only; AdamW's normalized step turns a relative gradient difference into at most a
 * small share of its lr of 3e-3). The tests allow 1e-5 relative and 5e-5 absolute.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { hostname } from "node:os";
import { assert, assertEquals } from "./assert.ts";
import { encodePng, gradient, put, withTempDir } from "./data_fixtures.ts";
import { type Experiment, experiment, experimentJson } from "../dsl/experiment.ts";
import * as m from "../dsl/model.ts";
import { imageLevelData, procedural, testPipeline, trainPipeline } from "../dsl/dataset.ts";
import { adamWSpec, evalConfig, trainConfig } from "../dsl/training.ts";
import { tinyExperiment } from "./fixtures/tiny_experiment.ts";
import { finalState, metrics } from "./run_helpers.ts";
import { mpiUnavailable, skippedName, slurmUnavailable } from "./mpi_device.ts";
import { deviceTestName, webgpuUnavailable } from "./webgpu_device.ts";

const FILE = "mpi_train_test.ts";
const noMpi = await mpiUnavailable(FILE);
const noSlurm = noMpi ?? await slurmUnavailable(FILE);
const noWebgpu = noMpi ?? await webgpuUnavailable(FILE);

/** Relative tolerance of each step's logged losses, absolute tolerance of every state value. */
const LOSS_TOLERANCE = 1e-5, STATE_TOLERANCE = 5e-5;

/** The tiny RankSeg run (top-4 of 8 classes: the pixel count depends on the selection) with dropout and a clip. */
const rankSeg = (o: Partial<Experiment["train"]> = {}): Experiment => {
  const base = tinyExperiment();
  return experiment({
    ...base,
    model: { ...base.model, backbone: m.vit({ dim: 16, depth: 1, heads: 2, patchSize: 8, dropout: 0.1 }) },
    train: trainConfig({
      ...base.train,
      steps: 20,
      logEvery: 1,
      checkpointEvery: 10,
      clipGradNorm: 1,
      optimizer: adamWSpec({ lr: 3e-3 }),
      ...o,
    }),
  });
};

const TAGS: Record<string, number[]> = {
  "p0.png": [0, 1],
  "p1.png": [2],
  "p2.png": [1, 3],
  "p3.png": [0, 2, 3],
};

/** A tiny LarvSeg run: every batch 2 pixel-labelled + 2 image-level images, both LarvSeg losses. */
const larvSeg = async (root: string): Promise<Experiment> => {
  let seed = 10;
  for (const name of Object.keys(TAGS)) {
    await put(join(root, "images", name), encodePng(20, 20, "rgb8", gradient(20, 20, seed++)));
  }
  const labels = await put(join(root, "labels.json"), JSON.stringify({ images: "images", labels: TAGS }));
  return experiment({
    name: "tiny-larvseg-mpi",
    model: m.larvSegmenter({
      classes: 4,
      backbone: m.vit({ dim: 16, depth: 1, heads: 2, patchSize: 8 }),
      attentiveClassifier: m.attentiveClassifier({ slots: 2, pixels: 2, labelsPerImage: 3 }),
    }),
    data: {
      dataset: procedural({
        numClasses: 4,
        height: 16,
        width: 16,
        count: 6,
        classesPerImage: 2,
        seed: 3,
        imageLabels: "crop",
      }),
      train: trainPipeline({ scale: [16, 16], ratioRange: [1, 1], cropSize: [16, 16] }),
      test: testPipeline(),
      imageLevel: imageLevelData({ labels }),
    },
    train: trainConfig({
      steps: 20,
      batchSize: 4,
      optimizer: adamWSpec({ lr: 3e-3 }),
      logEvery: 1,
      checkpointEvery: 10,
    }),
    eval: evalConfig({ examples: 0 }),
  });
};

interface Ran {
  readonly code: number;
  readonly stderr: string;
}

/**
 * `train <spec> --out <dir>` on one thread per rank, without Workers: alone, with `--ranks N`, or under
 * another launcher's command line (`srun --mpi=pmix -n 2`, `mpirun -np 2 …`).
 */
const train = async (
  spec: string,
  out: string,
  { flags = [], launcher = [], env = {} }: {
    flags?: string[];
    launcher?: string[];
    env?: Record<string, string>;
  } = {},
): Promise<Ran> => {
  const args = [
    "run",
    "-A",
    "cli/main.ts",
    "train",
    spec,
    "--out",
    out,
    "--threads",
    "1",
    "--workers",
    "0",
    ...flags,
  ];
  const [cmd, ...pre] = launcher.length ? [...launcher, Deno.execPath()] : [Deno.execPath()];
  const o = await new Deno.Command(cmd, {
    args: [...pre, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: o.code, stderr: new TextDecoder().decode(o.stderr) };
};

const MPIRUN = ["mpirun", ...(Deno.uid() === 0 ? ["--allow-run-as-root"] : []), "--oversubscribe", "-np"];

const writeSpec = async (root: string, e: Experiment, name = "e.json") => {
  const file = join(root, name);
  await Deno.writeTextFile(file, experimentJson(e));
  return file;
};

const trainLosses = (dir: string) => metrics(dir).filter((l) => l.kind === "train");

/**
 * Parameters whose exact gradient is 0: LarvSeg's β shifts every class's logit alike and cancels in the
 * softmax. AdamW divides their float-noise gradients by the noise's own scale and moves them by up to lr
 * per step, differently in any two summation orders: their values are compared by nothing but that.
 */
const ZERO_GRADIENT = new Set(["model.psi.beta"]);

/** Asserts that two runs logged the same steps with losses within LOSS_TOLERANCE and end in the same state. */
const assertSameRun = async (a: string, b: string) => {
  const [la, lb] = [trainLosses(a), trainLosses(b)];
  assertEquals(la.map((l) => l.step), lb.map((l) => l.step), "logged steps");
  la.forEach((l, i) => {
    const terms = { loss: l.loss, ...l.terms }, other = { loss: lb[i].loss, ...lb[i].terms };
    for (const [name, v] of Object.entries(terms as Record<string, number>)) {
      const w = (other as Record<string, number>)[name];
      assert(
        Math.abs(v - w) <= LOSS_TOLERANCE * Math.max(Math.abs(v), 1e-6),
        `step ${l.step} ${name}: ${v} vs ${w}`,
      );
    }
  });
  const [sa, sb] = [await finalState(a), await finalState(b)];
  assertEquals(Object.keys(sa).sort(), Object.keys(sb).sort());
  const beyond: string[] = [];
  for (const name of Object.keys(sa)) {
    if (ZERO_GRADIENT.has(name)) {
      // Float noise is its whole gradient: AdamW's first moment stays at the noise level in both runs.
      for (const s of [sa, sb]) {
        const m = s[`adam.m:${name}`].data as Float32Array;
        assert(m.every((v) => Math.abs(v) < 1e-6), `adam.m:${name} is ${m}`);
      }
      continue;
    }
    const [x, y] = [sa[name].data as Float32Array, sb[name].data as Float32Array];
    let worst = 0;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
    if (worst > STATE_TOLERANCE) beyond.push(`${name}: differs by ${worst}`);
  }
  assertEquals(beyond, []);
};

const ok = (r: Ran, what: string) =>
  assert(r.code === 0, `${what} exited ${r.code}: ${r.stderr.slice(-2000)}`);

/** The non-empty lines of a command's stderr. */
const lines = (text: string) => text.split("\n").filter((l) => l.trim() !== "");

Deno.test({
  name: skippedName(
    "mpi: 2 ranks × batch 2 (train --ranks 2, i.e. mpirun) = 1 process × batch 4, RankSeg with dropout and clipping, 20 AdamW steps; rank 0 alone writes",
    noMpi,
  ),
  ignore: noMpi !== undefined,
  fn: async () => {
    await withTempDir(async (root) => {
      const spec = await writeSpec(root, rankSeg());
      const one = join(root, "one"), two = join(root, "two");
      ok(await train(spec, one), "1 process");
      const r = await train(spec, two, { flags: ["--ranks", "2"] });
      ok(r, "2 ranks");
      await assertSameRun(one, two);
      // One writer: each step logged once, meta says 2 ranks, and the evaluation table printed once.
      assertEquals(trainLosses(two).length, 20);
      assertEquals(JSON.parse(readFileSync(join(two, "meta.json"), "utf8")).ranks, 2);
      assertEquals(lines(r.stderr).filter((l) => l.startsWith("mIoU=")).length, 1);
      // The loss terms are all-reduced: every logged line also says what the all-reduce moved per step.
      assert(trainLosses(two).every((l) => l.allReduceBytes > 0), "allReduceBytes in every train line");
    }, "kappa-mpi-");
  },
});

Deno.test({
  name: skippedName("mpi: 2 ranks under srun --mpi=pmix = 1 process at the global batch", noSlurm),
  ignore: noSlurm !== undefined,
  fn: async () => {
    await withTempDir(async (root) => {
      const spec = await writeSpec(root, rankSeg({ steps: 10 }));
      const one = join(root, "one"), two = join(root, "two");
      ok(await train(spec, one), "1 process");
      ok(await train(spec, two, { launcher: ["srun", "--mpi=pmix", "-n", "2"] }), "srun -n 2");
      await assertSameRun(one, two);
      assertEquals(JSON.parse(readFileSync(join(two, "meta.json"), "utf8")).ranks, 2);
    }, "kappa-srun-");
  },
});

Deno.test({
  name: skippedName(
    "mpi: LarvSeg (counts of labelled pixels and (image, class) pairs all-reduced, mixed batches, the cross-image bank) on 2 ranks = 1 process",
    noMpi,
  ),
  ignore: noMpi !== undefined,
  fn: async () => {
    await withTempDir(async (root) => {
      const spec = await writeSpec(root, await larvSeg(root));
      const one = join(root, "one"), two = join(root, "two");
      ok(await train(spec, one), "1 process");
      ok(await train(spec, two, { flags: ["--ranks", "2"] }), "2 ranks");
      // The terms with data-dependent normalizers are logged: the pixel loss and both LarvSeg losses.
      const terms = trainLosses(one)[0].terms;
      for (const t of ["pixel", "imageLevel", "attentive"]) assert(t in terms, `term ${t}`);
      // The bank (checkpointed state) included: every rank wrote the whole global batch.
      await assertSameRun(one, two);
    }, "kappa-mpi-larvseg-");
  },
});

Deno.test({
  name: skippedName(
    "mpi: a run trained on 1 rank continues on 2 (--extend-steps) and ends where one process ends",
    noMpi,
  ),
  ignore: noMpi !== undefined,
  fn: async () => {
    await withTempDir(async (root) => {
      // A constant learning rate, so that the first 10 steps of a 20-step run are those of a 10-step run.
      const full = await writeSpec(root, rankSeg({ schedule: { _tag: "Constant" } }), "full.json");
      const half = await writeSpec(root, rankSeg({ schedule: { _tag: "Constant" }, steps: 10 }), "half.json");
      const straight = join(root, "straight"), switched = join(root, "switched");
      ok(await train(full, straight), "1 process, 20 steps");
      ok(await train(half, switched), "1 process, 10 steps");
      ok(await train(full, switched, { flags: ["--ranks", "2", "--extend-steps", "20"] }), "2 ranks, to 20");
      await assertSameRun(straight, switched);
      const meta = JSON.parse(readFileSync(join(switched, "meta.json"), "utf8"));
      assertEquals([meta.ranks, meta.resumed.map((r: { ranks: number }) => r.ranks)], [1, [2]]);
    }, "kappa-mpi-resume-");
  },
});

/** The PID of the process whose environment holds `marker` and `OMPI_COMM_WORLD_RANK=<rank>`. */
const rankPid = (marker: string, rank: number): number | undefined => {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`, "utf8").split("\0");
      if (env.includes(marker) && env.includes(`OMPI_COMM_WORLD_RANK=${rank}`)) return Number(entry);
    } catch {
      // gone, or not ours to read
    }
  }
  return undefined;
};

Deno.test({
  name: skippedName(
    "mpi: a killed rank fails the job with a line naming it; --resume on 1 rank ends where one process ends",
    noMpi,
  ),
  ignore: noMpi !== undefined,
  fn: async () => {
    await withTempDir(async (root) => {
      const spec = await writeSpec(root, rankSeg({ steps: 60, checkpointEvery: 2 }));
      const straight = join(root, "straight"), killed = join(root, "killed");
      ok(await train(spec, straight), "1 process");
      const marker = `KAPPA_TEST_RUN=${crypto.randomUUID()}`;
      const running = train(spec, killed, {
        flags: ["--ranks", "2"],
        env: { [marker.split("=")[0]]: marker.split("=")[1] },
      });
      // Once rank 0 wrote its first checkpoint, rank 1 is killed (SIGKILL: it says nothing itself).
      const first = join(killed, "checkpoints", "step-000002.safetensors");
      let pid: number | undefined;
      while (!existsSync(first) || (pid = rankPid(marker, 1)) === undefined) {
        await new Promise((r) => setTimeout(r, 20));
      }
      Deno.kill(pid, "SIGKILL");
      const r = await running;
      assert(r.code !== 0, "the job fails");
      const named = lines(r.stderr).filter((l) => l.startsWith("train: rank 1 "));
      assertEquals(named.length, 1, r.stderr);
      assert(named[0].includes("signal 9") && named[0].includes("--resume"), named[0]);
      // Resumed on one process from the newest checkpoint.
      ok(await train(spec, killed, { flags: ["--resume"] }), "resume on 1 rank");
      await assertSameRun(straight, killed);
    }, "kappa-mpi-kill-");
  },
});

Deno.test({
  name: skippedName(
    "mpi: Ctrl-C stops every rank after the same step with a checkpoint (exit 130, one line); --resume on 2 ranks = never stopping, bitwise",
    noMpi,
  ),
  ignore: noMpi !== undefined,
  fn: async () => {
    await withTempDir(async (root) => {
      const spec = await writeSpec(root, rankSeg({ steps: 40, checkpointEvery: 2 }));
      const straight = join(root, "straight"), stopped = join(root, "stopped");
      ok(await train(spec, straight, { flags: ["--ranks", "2"] }), "2 ranks");
      // As a terminal's Ctrl-C: SIGINT to the launcher's process group (setsid makes it one).
      const args = [
        "run",
        "-A",
        "cli/main.ts",
        "train",
        spec,
        "--out",
        stopped,
        "--threads",
        "1",
        "--workers",
        "0",
      ];
      const child = new Deno.Command("setsid", {
        args: [Deno.execPath(), ...args, "--ranks", "2"],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      while (!existsSync(join(stopped, "checkpoints", "step-000002.safetensors"))) {
        await new Promise((r) => setTimeout(r, 20));
      }
      await new Deno.Command("kill", { args: ["-INT", "--", `-${child.pid}`] }).output();
      const out = await child.output();
      const said = lines(new TextDecoder().decode(out.stderr)).filter((l) => l.startsWith("stopped at step"));
      assertEquals([out.code, said.length], [130, 1], new TextDecoder().decode(out.stderr));
      const step = Number(/stopped at step (\d+)/.exec(said[0])![1]);
      assert(
        step < 40 &&
          existsSync(join(stopped, "checkpoints", `step-${String(step).padStart(6, "0")}.safetensors`)),
      );
      assert(!existsSync(join(stopped, "train.lock")), "rank 0 released the lock");
      ok(await train(spec, stopped, { flags: ["--ranks", "2", "--resume"] }), "resume on 2 ranks");
      const strip = (dir: string) => trainLosses(dir).map(({ allReduceSeconds: _s, ...rest }) => rest);
      assertEquals(strip(stopped), strip(straight));
      const [a, b] = [await finalState(straight), await finalState(stopped)];
      for (const name of Object.keys(a)) {
        const [x, y] = [a[name].data as Float32Array, b[name].data as Float32Array];
        assert(x.every((v, i) => Object.is(v, y[i])), `${name} differs`);
      }
    }, "kappa-mpi-stop-");
  },
});

Deno.test({
  name: skippedName(
    "mpi: a missing MPI library, a batch that does not split over the ranks and a --ranks that is not the launcher's are one line each",
    noMpi,
  ),
  ignore: noMpi !== undefined,
  fn: async () => {
    await withTempDir(async (root) => {
      const spec = await writeSpec(root, rankSeg({ steps: 2 }));
      const missing = await train(spec, join(root, "a"), {
        flags: ["--ranks", "2"],
        env: { KAPPA_MPI_LIBRARY: "libmpi-missing.so.40" },
      });
      assert(missing.code !== 0);
      assertEquals(lines(missing.stderr).length, 1, missing.stderr);
      assert(lines(missing.stderr)[0].startsWith("MPI: cannot use libmpi-missing.so.40: "), missing.stderr);
      const three = await train(spec, join(root, "b"), { flags: ["--ranks", "3"] });
      assertEquals(
        [three.code, lines(three.stderr)],
        [1, [
          "train.batchSize: 4 images do not split into 3 equal shards (one per rank); use a batch size " +
          "divisible by 3, or 1, 2, 4 ranks",
        ]],
      );
      const other = await train(spec, join(root, "c"), {
        flags: ["--ranks", "4"],
        launcher: [...MPIRUN, "2"],
      });
      assert(other.code !== 0);
      const said = lines(other.stderr).filter((l) => l.startsWith("train: --ranks"));
      assertEquals(said, [
        "train: --ranks 4, but mpirun started 2 ranks; give the same count to both, or drop --ranks",
      ]);
      // A frozen backbone trains in one process (its feature cache is read by one loader), said before
      // mpirun starts and, under a launcher, by rank 0.
      const frozenLine = "train.frozenBackbone: a frozen backbone trains in one process; leave it out to " +
        "train on 2 ranks";
      const frozen = await train(spec, join(root, "d"), {
        flags: ["--ranks", "2", "--frozen-backbone", "1"],
      });
      assertEquals([frozen.code, lines(frozen.stderr)], [1, [frozenLine]]);
      const frozenLaunched = await train(spec, join(root, "e"), {
        flags: ["--frozen-backbone", "1"],
        launcher: [...MPIRUN, "2"],
      });
      assert(frozenLaunched.code !== 0);
      assert(lines(frozenLaunched.stderr).some((l) => l.endsWith(frozenLine)), frozenLaunched.stderr);
      for (const d of ["a", "b", "c", "d", "e"]) assert(!existsSync(join(root, d)), `no run folder ${d}`);
      // A rank that cannot start (rank 0 finds the folder in use: this process's live PID holds its lock)
      // says so, naming itself; the other ranks stop with it, silent.
      const held = join(root, "held");
      await Deno.mkdir(held);
      const lock = {
        pid: Deno.pid,
        host: hostname(),
        startedAt: "2026-01-01T00:00:00.000Z",
        token: "0123abcd",
      };
      await Deno.writeTextFile(join(held, "train.lock"), JSON.stringify(lock));
      const busy = await train(spec, held, { flags: ["--ranks", "2"] });
      assertEquals([busy.code !== 0, lines(busy.stderr).length], [true, 1], busy.stderr);
      assert(
        lines(busy.stderr)[0].startsWith(`rank 0: ${held}: in use by another train (PID ${Deno.pid}`),
        busy.stderr,
      );
    }, "kappa-mpi-errors-");
  },
});

Deno.test({
  name: deviceTestName(
    "mpi: 2 webgpu ranks (gradients read back, all-reduced on the host, sent up again) = 1 webgpu process",
    noWebgpu,
  ),
  ignore: noWebgpu !== undefined,
  fn: async () => {
    await withTempDir(async (root) => {
      const spec = await writeSpec(root, rankSeg({ steps: 6, checkpointEvery: 3 }));
      const one = join(root, "one"), two = join(root, "two");
      ok(await train(spec, one, { flags: ["--provider", "webgpu"] }), "1 webgpu process");
      ok(await train(spec, two, { flags: ["--provider", "webgpu", "--ranks", "2"] }), "2 webgpu ranks");
      await assertSameRun(one, two);
    }, "kappa-mpi-webgpu-");
  },
});
