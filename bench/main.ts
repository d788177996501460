/**
 * `deno task bench <suite>`: performance measurements, as ratios against a peer run side by side.
 * Suites write their figures into BENCHMARKS.md together with the command that produced them.
 */
const suites: Record<string, () => Promise<unknown>> = {
  engine: async () => (await import("./engine.ts")).main(Deno.args.slice(1)),
  ablation: async () => (await import("./ablation.ts")).main(Deno.args.slice(1)),
  larvseg: async () => (await import("./larvseg.ts")).main(Deno.args.slice(1)),
  "larvseg-bank": async () => (await import("./larvseg_bank.ts")).main(Deno.args.slice(1)),
  perf: async () => (await import("./perf.ts")).main(Deno.args.slice(1)),
  panoptic: async () => (await import("./panoptic.ts")).main(Deno.args.slice(1)),
  gpu: async () => (await import("./gpu.ts")).main(Deno.args.slice(1)),
  quantize: async () => (await import("./quantize.ts")).main(Deno.args.slice(1)),
  profile: async () => (await import("./profile_ops.ts")).main(Deno.args.slice(1)),
  parity: async () => (await import("./parity.ts")).main(Deno.args.slice(1)),
  data: async () => {
    const [{ Effect }, { benchData }] = await Promise.all([import("effect"), import("./data.ts")]);
    return Effect.runPromise(benchData());
  },
};

const [suite] = Deno.args;
const run = suite ? suites[suite] : undefined;
if (!run) {
  console.error(`usage: deno task bench <${Object.keys(suites).join("|")}>`);
  Deno.exit(2);
}
await run();
