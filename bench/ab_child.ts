/**
 * The child of `deno task bench ab` (bench/ab.ts): the training steps of two sides in one process, each
 * in its own ONNX Runtime session, timed in alternating order (A B B A …), so that both see the same
 * background load. A side is a kappa tree (the checkout, or a commit `git archive`d by the parent) plus
 * runtime options; each tree's own bench model and runtime build its graph, so a side measures that
 * tree's lowering, rules and runtime. Argument: JSON { sides, model, threads, warmup, steps }; prints
 * one JSON line: each side's step times and losses.
 */
import { Effect, Scope } from "effect";

interface SideRequest {
  readonly tree: string;
  readonly options: Record<string, unknown>;
}
const { sides, model, threads, warmup, steps } = JSON.parse(Deno.args[0]) as {
  sides: SideRequest[];
  model: "vit" | "mobilenet";
  threads: number;
  warmup: number;
  steps: number;
};

// deno-lint-ignore no-explicit-any
type Any = any;
const opened = await Promise.all(sides.map(async ({ tree, options }) => {
  const mod: Any = await import(`${tree}/mod.ts`);
  const seg: Any = await import(`${tree}/bench/segmenter_model.ts`);
  const runs: Any = await import(`${tree}/bench/perf_runs.ts`);
  const mobile: Any = model === "mobilenet" ? await import(`${tree}/bench/mobilenet_model.ts`) : undefined;
  const pm = mobile ? mobile.MOBILENET_MODEL : seg.PERF_MODEL;
  const g = seg.perfTrainingGraph(pm);
  const p = mod.plan(g.name, g, [mod.graphStage(g)]);
  const seeded = await runs.initialState(p, 0);
  const state = mobile ? await mobile.withPretrained(pm, g, seeded) : seeded;
  // The sessions stay open until the process ends.
  const scope = Effect.runSync(Scope.make());
  const ex: Any = await Effect.runPromise(
    Effect.provideService(
      mod.execute(p, { seed: 0, threads, optimization: "all", ...options }),
      Scope.Scope,
      scope,
    ),
  );
  for (const [name, v] of state) ex.state.set(name, v);
  return { ex, feeds: seg.perfFeeds(pm) };
}));

const ms: number[][] = sides.map(() => []);
const losses: number[][] = sides.map(() => []);
const step = async (i: number) => {
  const { ex, feeds } = opened[i];
  const t0 = performance.now();
  const out: Any = await Effect.runPromise(ex.run(feeds));
  const t = performance.now() - t0;
  return { t, loss: Number(out.get("loss").data[0]) };
};
for (let w = 0; w < warmup; w++) for (let i = 0; i < sides.length; i++) losses[i].push((await step(i)).loss);
for (let s = 0; s < steps; s++) {
  // A B, then B A: each side runs first in half of the pairs.
  const order = s % 2 === 0 ? sides.map((_, i) => i) : sides.map((_, i) => sides.length - 1 - i);
  for (const i of order) {
    const r = await step(i);
    ms[i].push(r.t);
    losses[i].push(r.loss);
  }
}
console.log(JSON.stringify({ ms, losses }));
