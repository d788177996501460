/**
 * `deno task bench <suite>`: performance measurements, as ratios against a peer run side by side.
 * Suites write their figures into BENCHMARKS.md together with the command that produced them. The
 * experiment grids that write RESULTS.md are `deno task grid` (grids/main.ts).
 */
const suites: Record<string, () => Promise<unknown>> = {
  engine: async () => (await import("./engine.ts")).main(Deno.args.slice(1)),
  "larvseg-bank": async () => (await import("./larvseg_bank.ts")).main(Deno.args.slice(1)),
  perf: async () => (await import("./perf.ts")).main(Deno.args.slice(1)),
  gpu: async () => (await import("./gpu.ts")).main(Deno.args.slice(1)),
  quantize: async () => (await import("./quantize.ts")).main(Deno.args.slice(1)),
  profile: async () => (await import("./profile_ops.ts")).main(Deno.args.slice(1)),
  data: async () => {
    const [{ Effect }, { benchData }] = await Promise.all([import("effect"), import("./data.ts")]);
    return Effect.runPromise(benchData());
  },
};

/** The experiment grids, which were bench suites before they moved to `deno task grid`. */
const MOVED_TO_GRID = ["ablation", "larvseg", "panoptic"];

const [suite] = Deno.args;
if (MOVED_TO_GRID.includes(suite)) {
  console.error(`bench ${suite}: the experiment grids moved; run: deno task grid ${Deno.args.join(" ")}`);
  Deno.exit(2);
}
const run = suite ? suites[suite] : undefined;
if (!run) {
  console.error(`usage: deno task bench <${Object.keys(suites).join("|")}>`);
  Deno.exit(2);
}
await run();
