/**
 * One rank of `bench scale`'s all-reduce measurement (run by mpirun -np 2): the quickstart's gradients
 * (its parameters' sizes, random values) through the data-parallel gradient all-reduce stage with one
 * bucket, 4 MiB buckets and one call per parameter, and a bare all-reduce of 64 MiB for the bandwidth
 * between the ranks. Rank 0 prints one JSON line: median milliseconds of each.
 */
import { Effect } from "effect";
import quickstart from "../experiments/quickstart.ts";
import {
  detectLaunch,
  type Launch,
  mpiWorld,
  optimizerConfig,
  trainingGraph,
  trainShapes,
  type Value,
  value,
} from "../mod.ts";
import { type GradientName, gradientReduceStage, parameters, random } from "../profiling.ts";

const REPEATS = 15, WARMUP = 3;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const launch = detectLaunch() as Launch;
await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
  const world = yield* mpiWorld(launch);
  const graph = trainingGraph(quickstart.model, trainShapes(quickstart), optimizerConfig(quickstart.train));
  const gradients: GradientName[] = parameters(graph).map((p, i) => ({
    output: `grad:${i}`,
    input: `meanGrad:${i}`,
    size: p.shape.reduce((a, b) => a * b, 1),
  }));
  const rng = random(world.rank, 1);
  const env = new Map<string, Value>(
    gradients.map((
      g,
    ) => [g.output, value("float32", Float32Array.from({ length: g.size }, () => rng.normal()), [g.size])]),
  );
  env.set("loss", value("float32", Float32Array.of(1), []));
  const time = (run: () => Effect.Effect<unknown, unknown>) =>
    Effect.gen(function* () {
      const ms: number[] = [];
      for (let i = 0; i < WARMUP + REPEATS; i++) {
        yield* world.barrier();
        const t = performance.now();
        yield* Effect.orDie(run());
        if (i >= WARMUP) ms.push(performance.now() - t);
      }
      return median(ms);
    });
  const stage = (bucketBytes: number) =>
    gradientReduceStage({ gradients, losses: ["loss"], collective: world, bucketBytes });
  const [one, mib4, each] = [stage(Infinity), stage(4 * 2 ** 20), stage(0)];
  const bare = new Float32Array(16 * 2 ** 20);
  const result = {
    parameters: gradients.length,
    bytes: 4 * gradients.reduce((a, g) => a + g.size, 0),
    oneBucketMs: yield* time(() => one.run(env)),
    buckets4MiBMs: yield* time(() => mib4.run(env)),
    perParameterMs: yield* time(() => each.run(env)),
    bare64MiBMs: yield* time(() => world.allReduceSum(bare)),
  };
  if (world.rank === 0) console.log(JSON.stringify(result));
})));
