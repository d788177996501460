/**
 * Data-parallel training without MPI: the pieces, each on its own, with ranks simulated in one process by
 * an in-process `Collective` — the count normalizer and the gradient split give the one-process step on
 * the global batch (LarvSeg's three data-dependent counts, a rank with no labelled pixel, the bank's
 * gathered writes), the all-reduce stages' arithmetic and buckets, the loaders' and dropout noise's
 * shards, the launch read from the launcher's environment, and `--ranks`'s mpirun command line.
 * tests/mpi_train_test.ts runs the same through MPI, end to end.
 */
import { Effect, Stream } from "effect";
import { assert, assertEquals } from "./assert.ts";
import type { Collective } from "../ir/collective.ts";
import { COUNT, COUNT_SHARE } from "../ir/count_normalized.ts";
import { type Plan, plan } from "../ir/plan.ts";
import { type Value, value } from "../ir/value.ts";
import { adamW } from "../ir/optim.ts";
import { random } from "../core/random.ts";
import * as m from "../dsl/model.ts";
import { procedural, trainPipeline } from "../dsl/dataset.ts";
import {
  dataParallelTrainingStages,
  IMAGE_LABELS,
  PIXEL_LABELLED,
  trainingStages,
} from "../interpret/segmenter.ts";
import { buckets, countReduceStage, gradientReduceStage, STOP_REQUESTED } from "../host/all_reduce.ts";
import { execute } from "../runtime/execute.ts";
import { detectLaunch, LaunchError } from "../runtime/mpi.ts";
import { trainLoader } from "../data/loader.ts";
import { noiseFeed } from "../train/run_state.ts";
import { deadRank, mpirunArgs, mpirunOutputFilter } from "../cli/ranks.ts";

/** `size` ranks in one process: each collective call completes once every rank has made it. */
const inProcess = (size: number): Collective[] => {
  type Call = { rank: number; data: Float32Array; done: (out: Float32Array) => void };
  let round: Call[] = [];
  /** Waits for every rank's call, then gives each rank its part of `combine`'s results (in rank order). */
  const meet = (rank: number, data: Float32Array, combine: (byRank: Float32Array[]) => Float32Array[]) =>
    Effect.promise(() =>
      new Promise<Float32Array>((done) => {
        round.push({ rank, data, done });
        if (round.length < size) return;
        const calls = round.sort((a, b) => a.rank - b.rank);
        round = [];
        combine(calls.map((c) => c.data)).forEach((out, r) => calls[r].done(out));
      })
    );
  return Array.from({ length: size }, (_, rank): Collective => ({
    rank,
    size,
    allReduceSum: (data) =>
      Effect.asVoid(meet(rank, data, (all) => {
        const sum = new Float32Array(data.length);
        for (const d of all) d.forEach((v, i) => (sum[i] += v));
        return all.map((d) => (d.set(sum), d));
      })),
    allGather: (data) =>
      meet(rank, data, (all) => {
        const out = new Float32Array(data.length * size);
        all.forEach((d, r) => out.set(d, r * data.length));
        return all.map(() => out);
      }),
    broadcast: () => Effect.void,
    barrier: () => Effect.void,
  }));
};

const K = 6, B = 2, S = 16;
const larvSeg = m.larvSegmenter({
  classes: K,
  backbone: m.vit({ dim: 16, depth: 1, heads: 2, patchSize: 8 }),
  attentiveClassifier: m.attentiveClassifier({ slots: 1, pixels: 2, labelsPerImage: 3 }),
});
const shapes = (batch: number) => ({ batch, height: S, width: S, trainSize: [S, S] as const });
const optimizer = { optimizer: adamW({ weightDecay: 0.01 }), clipGradNorm: 0.5 };

/** A global batch of 2·B images; the last B are image-level only (no pixel labels: rank 1 counts 0 pixels). */
const globalBatch = (step: number): Record<string, Value> => {
  const rng = random(7, step);
  const n = 2 * B;
  return {
    images: value("float32", Float32Array.from({ length: n * 3 * S * S }, () => rng.normal()), [n, 3, S, S]),
    labels: value("int32", Int32Array.from({ length: n * S * S }, () => rng.int(K + 1) % K), [n, S, S]),
    [IMAGE_LABELS]: value(
      "float32",
      Float32Array.from({ length: n * K }, () => (rng.uniform() < 0.4 ? 1 : 0)),
      [
        n,
        K,
      ],
    ),
    [PIXEL_LABELLED]: value("float32", Float32Array.from({ length: n }, (_, i) => (i < B ? 1 : 0)), [n]),
  };
};

/** Rank r's half of a global feed (the first axis split in two). */
const half = (v: Value, r: number): Value => {
  const per = v.data.length / 2;
  return value(v.type as never, v.data.slice(r * per, (r + 1) * per) as never, [
    v.dims[0] / 2,
    ...v.dims.slice(1),
  ]);
};

const schedule = (step: number) => ({
  lr: value("float32", Float32Array.of(1e-2), []),
  step: value("float32", Float32Array.of(step), []),
});

Deno.test("data parallel in one process: 2 ranks × B = 1 process × 2B for LarvSeg's count-normalized losses (a rank with no labelled pixel), AdamW with a global clip, the bank", async () => {
  const fused = trainingStages(larvSeg, shapes(2 * B), optimizer);
  const collectives = inProcess(2);
  const ranks = collectives.map((collective) =>
    dataParallelTrainingStages(larvSeg, shapes(B), optimizer, { collective })
  );
  // Three count sites: labelled pixels, labelled (image, class) pairs of the image-level and attentive losses.
  const sites = [...ranks[0].graph.outputs.keys()].filter((n) => n.startsWith(COUNT)).sort();
  assertEquals(sites, [
    "count:loss.labelledImageClasses",
    "count:loss.labelledPixels",
    "count:model.attentive.labelledPairs",
  ]);
  assertEquals(ranks[0].stages.map((s) => s.name), [
    "bank read",
    "counts",
    "all-reduce counts",
    "gradients",
    "all-reduce gradients",
    "update",
    "bank write",
  ]);
  const losses = ["loss", "loss.pixel", "loss.imageLevel", "loss.attentive"];
  await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const one = yield* execute(plan("one", fused.graph, fused.stages), { seed: 3, threads: 1 });
    const two = [];
    for (const r of ranks) {
      two.push(yield* execute(plan("rank", r.graph, r.stages) as Plan, { seed: 3, threads: 1 }));
    }
    for (let step = 1; step <= 3; step++) {
      const feeds = { ...globalBatch(step), ...schedule(step) };
      const a = yield* one.run(feeds);
      const b = yield* Effect.all(
        two.map((ex, r) =>
          ex.run({
            ...Object.fromEntries(Object.entries(globalBatch(step)).map(([k, v]) => [k, half(v, r)])),
            ...schedule(step),
          })
        ),
        { concurrency: "unbounded" },
      );
      for (const name of losses) {
        const [x, y0, y1] = [a, b[0], b[1]].map((out) => out.get(name)!.data[0] as number);
        assertEquals(y0, y1, `${name}: every rank has the same all-reduced value`);
        assert(Math.abs(x - y0) <= 1e-5 * Math.max(Math.abs(x), 1e-3), `step ${step} ${name}: ${x} vs ${y0}`);
      }
    }
    // The ranks' state is one state, and it is the one process's within float32 summation order.
    for (const [name, v] of one.state) {
      const x = v.data as Float32Array;
      const [y0, y1] = two.map((ex) => ex.state.get(name)!.data as Float32Array);
      assert(y0.every((v, i) => v === y1[i]), `${name}: the ranks differ`);
      // β cancels in the softmax: its exact gradient is 0 and its float one is noise AdamW scales up.
      if (name === "model.psi.beta") continue;
      let worst = 0;
      for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y0[i]));
      assert(worst <= 5e-5, `${name}: differs by ${worst}`);
    }
    // The bank was written with the global batch's rows on every rank: it has rows (the 2B images' labels).
    assert((one.state.get("model.attentive.bankFill")!.data as Float32Array).some((v) => v > 0));
  })));
});

Deno.test("all-reduce stages: count shares max(Σ, 1) / N; gradients and losses averaged whatever the buckets; the stop flag summed", async () => {
  const [c0, c1] = inProcess(2);
  const counts = (c: Collective, n: number, site = "s") =>
    countReduceStage([site], c).run(new Map([[`${COUNT}${site}`, value("float32", Float32Array.of(n), [])]]));
  const shares = await Effect.runPromise(Effect.all([counts(c0, 3), counts(c1, 0)], { concurrency: 2 }));
  assertEquals(shares.map((s) => s[`${COUNT_SHARE}s`].data[0]), [1.5, 1.5]);
  const none = await Effect.runPromise(Effect.all([counts(c0, 0), counts(c1, 0)], { concurrency: 2 }));
  assertEquals(none.map((s) => s[`${COUNT_SHARE}s`].data[0]), [0.5, 0.5]);

  const gradients = [
    { output: "grad:a", input: "meanGrad:a", size: 3 },
    { output: "grad:b", input: "meanGrad:b", size: 2 },
  ];
  assertEquals(buckets(gradients, Infinity).map((b) => b.length), [2]);
  assertEquals(buckets(gradients, 0).map((b) => b.length), [1, 1]);
  assertEquals(buckets(gradients, 16).map((b) => b.length), [1, 1]);
  assertEquals(buckets(gradients, 20).map((b) => b.length), [2]);
  const env = (r: number, stop: number) =>
    new Map<string, Value>([
      ["grad:a", value("float32", Float32Array.of(1, 2, 3).map((v) => v * (r + 1)), [3])],
      ["grad:b", value("float32", Float32Array.of(10, 20).map((v) => v + r), [2, 1])],
      ["loss", value("float32", Float32Array.of(r === 0 ? 1 : 3), [])],
      [STOP_REQUESTED, value("float32", Float32Array.of(stop), [1])],
    ]);
  for (const bucketBytes of [Infinity, 0]) {
    const [s0, s1] = [c0, c1].map((collective) =>
      gradientReduceStage({ gradients, losses: ["loss"], collective, bucketBytes })
    );
    const [o0, o1] = await Effect.runPromise(
      Effect.all([s0.run(env(0, 0)), s1.run(env(1, 1))], { concurrency: 2 }),
    );
    for (const out of [o0, o1]) {
      assertEquals([...out["meanGrad:a"].data], [1.5, 3, 4.5]);
      assertEquals([[...out["meanGrad:b"].data], out["meanGrad:b"].dims], [[10.5, 20.5], [2, 1]]);
      assertEquals([out.loss.data[0], out[STOP_REQUESTED].data[0]], [2, 1]);
    }
  }
});

Deno.test("loader shards: rank r of N gets samples [r·B/N, (r+1)·B/N) of each global batch, nothing else, at the global positions", async () => {
  const spec = procedural({ numClasses: 4, height: 24, width: 24, count: 10, classesPerImage: 2, seed: 2 });
  const pipeline = trainPipeline({ scale: [24, 24], ratioRange: [0.8, 1.2], cropSize: [16, 16] });
  const take = (shard?: { rank: number; ranks: number }) =>
    Effect.runPromise(
      Stream.runCollect(
        trainLoader(spec, pipeline, { batchSize: 4, seed: 5, workers: 0, ...(shard ? { shard } : {}) }).pipe(
          Stream.take(4),
        ),
      ),
    ).then((c) => [...c]);
  const whole = await take();
  const parts = await Promise.all([0, 1].map((rank) => take({ rank, ranks: 2 })));
  whole.forEach((batch, i) => {
    const [a, b] = parts.map((p) => p[i]);
    assertEquals([a.batchSize, b.batchSize], [2, 2]);
    assertEquals([a.position, b.position], [batch.position, batch.position]);
    assertEquals([...a.ids, ...b.ids], [...batch.ids]);
    assertEquals([...a.images, ...b.images], [...batch.images]);
    assertEquals([...a.labels, ...b.labels], [...batch.labels]);
  });
});

Deno.test("dropout noise: rank r's feed is the r-th slice of the one-process noise of the global batch", () => {
  const global = noiseFeed(4, 7, { name: "noise:model.x", dtype: "float32", shape: [6, 5] });
  const slices = [0, 1, 2].map((rank) =>
    noiseFeed(4, 7, { name: "noise:model.x", dtype: "float32", shape: [2, 5] }, { rank, ranks: 3 })
  );
  assertEquals(slices.flatMap((s) => [...s.data]), [...global.data]);
});

Deno.test("launch: the rank and size come from mpirun's or srun's environment; srun without PMIx is refused; a batch script is no launch", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assertEquals(
    detectLaunch(
      env({ OMPI_COMM_WORLD_RANK: "1", OMPI_COMM_WORLD_SIZE: "4", OMPI_COMM_WORLD_LOCAL_SIZE: "2" }),
    ),
    { launcher: "mpirun", rank: 1, size: 4, localSize: 2 },
  );
  assertEquals(
    detectLaunch(
      env({ PMIX_RANK: "0", SLURM_PROCID: "0", SLURM_STEP_NUM_TASKS: "2", SLURM_STEP_TASKS_PER_NODE: "2" }),
    ),
    { launcher: "srun", rank: 0, size: 2, localSize: 2 },
  );
  const bare = detectLaunch(env({ SLURM_PROCID: "1", SLURM_STEP_NUM_TASKS: "2" }));
  assert(bare instanceof LaunchError && bare.rank === 1, String(bare));
  assertEquals(
    bare.message,
    "srun started 2 tasks without an MPI plugin (this is task 1); they would train one run each: use srun " +
      "--mpi=pmix -n 2, or start one task",
  );
  assertEquals(detectLaunch(env({ SLURM_PROCID: "0", SLURM_NTASKS: "2" })), undefined);
  assertEquals(detectLaunch(env({ SLURM_PROCID: "0", SLURM_STEP_NUM_TASKS: "1" })), undefined);
  assertEquals(detectLaunch(env({})), undefined);
});

Deno.test("--ranks: mpirun's command line (as root, oversubscribed only beyond the cores, --ranks left out); its output filtered and read", () => {
  const args = ["train", "x.ts", "--ranks", "2", "--threads", "1", "--ranks=2"];
  const line = mpirunArgs(2, args, { root: true, cores: 2 });
  assertEquals(line.slice(0, 5), ["--allow-run-as-root", "--bind-to", "none", "-np", "2"]);
  assertEquals(line.slice(-4), ["train", "x.ts", "--threads", "1"]);
  assertEquals(mpirunArgs(3, args, { root: false, cores: 2 }).slice(0, 4), [
    "--oversubscribe",
    "--bind-to",
    "none",
    "-np",
  ]);
  const rule = "-".repeat(74);
  const filter = mpirunOutputFilter();
  const shown = [
    "MPI: cannot use x",
    rule,
    "Primary job  terminated normally, but 1 process returned",
    "a non-zero exit code. Per user-direction, the job has been aborted.",
    rule,
    rule,
    "mpirun noticed that process rank 1 with PID 0 on node vm exited on signal 9 (Killed).",
    rule,
  ].flatMap(filter);
  assertEquals(shown, [
    "MPI: cannot use x",
    rule,
    "mpirun noticed that process rank 1 with PID 0 on node vm exited on signal 9 (Killed).",
    rule,
  ]);
  assertEquals(deadRank(shown[2]), "rank 1 (on vm) died: signal 9 (Killed)");
});
