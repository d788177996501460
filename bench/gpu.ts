/**
 * `deno task bench gpu [--crop HxW] [--batch B] [--steps N] [--json OUT]`: the quickstart model's training
 * step and one-image inference on `webgpu` against `cpu`, and the host↔device bytes a step moves with
 * device-resident state and without it. Prints a table and rewrites the "WebGPU" section of
 * BENCHMARKS.md. With `--json OUT` it is the one-command device check for a machine with a GPU: it also
 * runs the webgpu tests (parity, placement, resume) with KAPPA_EXPECT_WEBGPU=1 and writes everything to
 * one JSON file instead of BENCHMARKS.md. Nothing beyond the repository's own install is fetched.
 *
 * On Mesa's lavapipe (a software Vulkan device on the CPU) webgpu is a correctness device, slower than
 * the CPU provider; the first step of each session compiles shaders (cached on disk by Mesa afterwards).
 */
import { Effect } from "effect";
import { fileURLToPath } from "node:url";
import quickstart from "../experiments/quickstart.ts";
import {
  execute,
  graphStage,
  inferenceGraph,
  optimizerConfig,
  plan,
  type Provider,
  trainingGraph,
  type Value,
  value,
} from "../mod.ts";
import { NOISE, noiseFeed } from "../profiling.ts";
import { machine } from "./machine.ts";
import { recordSection } from "../figures/markdown.ts";

interface Options {
  readonly height: number;
  readonly width: number;
  readonly batch: number;
  readonly steps: number;
  readonly json?: string;
}

const parse = (args: readonly string[]): Options => {
  const flag = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const [height, width] = (flag("--crop") ?? "64x64").split("x").map(Number);
  return {
    height,
    width,
    batch: Number(flag("--batch") ?? 2),
    steps: Number(flag("--steps") ?? 5),
    json: flag("--json"),
  };
};

interface Side {
  readonly provider: Provider;
  readonly deviceState: boolean;
  /** Seconds of the first step (session's shader compilation included). */
  readonly firstStepSeconds: number;
  readonly stepSeconds: number;
  readonly inferenceSeconds: number;
  readonly bytesToDevicePerStep: number;
  readonly bytesToHostPerStep: number;
  readonly losses: readonly number[];
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const measure = (o: Options, provider: Provider, deviceState: boolean) =>
  Effect.scoped(Effect.gen(function* () {
    const shapes = {
      batch: o.batch,
      height: o.height,
      width: o.width,
      trainSize: [o.height, o.width] as const,
    };
    const g = trainingGraph(quickstart.model, shapes, optimizerConfig(quickstart.train));
    const ex = yield* execute(plan("train", g, [graphStage(g, { name: "train" })]), {
      seed: 1,
      provider,
      deviceState,
    });
    const pixels = o.batch * o.height * o.width;
    const feeds = (s: number): Record<string, Value> => {
      const f: Record<string, Value> = {
        images: value("float32", Float32Array.from({ length: 3 * pixels }, (_, i) => Math.sin(i + s)), [
          o.batch,
          3,
          o.height,
          o.width,
        ]),
        labels: value("int32", Int32Array.from({ length: pixels }, (_, i) => (i + s) % 12), [
          o.batch,
          o.height,
          o.width,
        ]),
        lr: value("float32", Float32Array.of(1e-3), []),
        step: value("float32", Float32Array.of(s), []),
      };
      for (const n of ex.plan.feeds.filter((f) => f.name.startsWith(NOISE))) f[n.name] = noiseFeed(1, s, n);
      return f;
    };
    const losses: number[] = [];
    let t = performance.now();
    losses.push((yield* ex.run(feeds(1))).get("loss")!.data[0] as number);
    const firstStepSeconds = (performance.now() - t) / 1000;
    const [toDevice, toHost] = [ex.transfers.toDevice, ex.transfers.toHost];
    const times: number[] = [];
    for (let s = 2; s <= o.steps + 1; s++) {
      t = performance.now();
      losses.push((yield* ex.run(feeds(s))).get("loss")!.data[0] as number);
      times.push((performance.now() - t) / 1000);
    }
    const bytesToDevicePerStep = (ex.transfers.toDevice - toDevice) / o.steps;
    const bytesToHostPerStep = (ex.transfers.toHost - toHost) / o.steps;

    const ig = inferenceGraph(quickstart.model, { ...shapes, batch: 1 });
    const inf = yield* execute(plan("infer", ig, [graphStage(ig)]), { provider });
    for (const name of inf.state.keys()) inf.state.set(name, ex.state.get(name)!);
    const first = (feeds(1).images.data as Float32Array).subarray(0, 3 * o.height * o.width);
    const image = { images: value("float32", first, [1, 3, o.height, o.width]) };
    yield* inf.run(image); // compiles
    const inferTimes: number[] = [];
    for (let i = 0; i < 3; i++) {
      t = performance.now();
      yield* inf.run(image);
      inferTimes.push((performance.now() - t) / 1000);
    }
    return {
      provider,
      deviceState,
      firstStepSeconds,
      stepSeconds: median(times),
      inferenceSeconds: median(inferTimes),
      bytesToDevicePerStep,
      bytesToHostPerStep,
      losses,
    } satisfies Side;
  }));

/** Runs the webgpu tests in a child process (the device expected), for the JSON device check. */
const runTests = async () => {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const files = [
    "webgpu_runtime_test.ts",
    "webgpu_lowering_test.ts",
    "webgpu_quickstart_test.ts",
    "webgpu_train_test.ts",
  ];
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", ...files.map((f) => `tests/${f}`)],
    cwd: root,
    env: { KAPPA_EXPECT_WEBGPU: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  // deno-lint-ignore no-control-regex -- test output is colored with ANSI escapes
  const plain = text.replace(/\x1b\[[0-9;]*m/g, "");
  return {
    passed: out.success,
    summary: plain.split("\n").filter((l) => /^(ok|FAILED) \|/.test(l.trim())).join("; "),
    measured: plain.split("\n").filter((l) => /^(losses|parameters|inference|on the CPU)/.test(l)),
    failures: out.success ? [] : plain.split("\n").filter((l) => /error:/.test(l)).slice(0, 20),
  };
};

const kb = (bytes: number) => bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KiB`;

const table = (o: Options, sides: readonly Side[]) =>
  [
    `Quickstart model, crop ${o.height}×${o.width}, batch ${o.batch}; median of ${o.steps} steps after the first, ` +
    `inference of one image (median of 3 after a first run).`,
    "",
    "| provider | state | first step (compiles) | step | inference | host→device / step | device→host / step |",
    "| -------- | ----- | --------------------: | ---: | --------: | -----------------: | -----------------: |",
    ...sides.map((s) =>
      `| ${s.provider} | ${s.provider === "cpu" ? "host" : s.deviceState ? "device" : "host"} | ` +
      `${s.firstStepSeconds.toFixed(2)} s | ${(s.stepSeconds * 1000).toFixed(0)} ms | ` +
      `${(s.inferenceSeconds * 1000).toFixed(0)} ms | ${
        s.provider === "cpu" ? "—" : kb(s.bytesToDevicePerStep)
      } | ` +
      `${s.provider === "cpu" ? "—" : kb(s.bytesToHostPerStep)} |`
    ),
  ].join("\n");

export const main = async (args: readonly string[]) => {
  const o = parse(args);
  const sides: Side[] = [];
  for (const [provider, deviceState] of [["cpu", false], ["webgpu", true], ["webgpu", false]] as const) {
    sides.push(await Effect.runPromise(measure(o, provider, deviceState)));
  }
  const text = table(o, sides);
  console.log(text);
  const m = machine();
  if (o.json) {
    const tests = await runTests();
    await Deno.writeTextFile(
      o.json,
      JSON.stringify({ machine: m, options: o, sides, tests }, null, 2) + "\n",
    );
    console.log(`wrote ${o.json}; webgpu tests ${tests.passed ? "passed" : "FAILED"}: ${tests.summary}`);
    if (!tests.passed) Deno.exitCode = 1;
    return;
  }
  const cmd = `deno task bench gpu ${args.join(" ")}`.trim();
  await recordSection(
    "BENCHMARKS.md",
    "WebGPU",
    `Measured by \`${cmd}\` on ${m.cpu} (${m.cores} cores), onnxruntime-node ${m.ort}. Here the webgpu device ` +
      "is Mesa's lavapipe, a software Vulkan device running on the same CPU cores: a correctness device, " +
      "slower than the CPU provider, not a GPU measurement; the copies that device-resident state saves are " +
      "small next to its compute, so its two webgpu rows differ by noise. The first step's time is with Mesa's " +
      "shader cache warm; with a cold cache the training graph's first step took about 190 s here.\n\n" +
      text,
  );
};
