/**
 * The quickstart model on the webgpu provider against the CPU (at a 32×32 crop, batch 1, so that a
 * software Vulkan device compiles its shaders in minutes): no node of the training or inference graph
 * runs on the CPU (ONNX Runtime's profile says where each node ran); inference classes and logits; 10
 * training steps (losses, parameters); a checkpoint (state read back) resumed on the device equals an
 * uninterrupted device run bitwise; an exported model runs on webgpu. Skips (saying why) without an
 * adapter; fails without one when KAPPA_EXPECT_WEBGPU=1.
 */
import { Effect, Exit, Scope } from "effect";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assert, assertEquals } from "./assert.ts";
import quickstart from "../experiments/quickstart.ts";
import { CLASSES, LOGITS, LOSS } from "../interpret/segmenter.ts";
import { inferenceGraph, trainingGraph } from "../interpret/graphs.ts";
import { optimizerConfig } from "../interpret/optimizer.ts";
import { exportModel } from "../eval/export_model.ts";
import { exportedModel } from "../kinds/export.ts";
import { NOISE } from "../layers/dropout.ts";
import { noiseFeed } from "../train/run_state.ts";
import { execute, type Executor, openSession, type Provider, runSession } from "../runtime/execute.ts";
import { graphStage, plan } from "../ir/plan.ts";
import { type Value, value } from "../ir/value.ts";
import { deviceTestName, nodesOnCpu, webgpuUnavailable } from "./webgpu_device.ts";

const unavailable = await webgpuUnavailable("webgpu_quickstart_test.ts");

const [H, W] = [32, 32];
const SEED = 7;
const model = quickstart.model;
const shapes = { batch: 1, height: H, width: W, trainSize: [H, W] as const };
const K = model.classes;

/** A deterministic image and label map for step `s` (labels in 0..K, K = ignored, in blocks). */
const batch = (s: number) => {
  const images = Float32Array.from({ length: 3 * H * W }, (_, i) => Math.sin(0.37 * i + 1.3 * s));
  const labels = Int32Array.from({ length: H * W }, (_, i) => {
    const [y, x] = [Math.floor(i / W), i % W];
    return (Math.floor(y / 8) * 3 + Math.floor(x / 8) + s) % (K + 1);
  });
  return {
    images: value("float32", images, [1, 3, H, W]),
    labels: value("int32", labels, [1, H, W]),
  };
};

const copyHost = (state: Map<string, Value>) =>
  new Map(
    [...state].map(([k, v]) => [k, value("float32", Float32Array.from(v.data as Float32Array), v.dims)]),
  );

const trainSteps = (ex: Executor, from: number, to: number) =>
  Effect.gen(function* () {
    const losses: number[] = [];
    const noise = ex.plan.feeds.filter((f) => f.name.startsWith(NOISE));
    for (let s = from + 1; s <= to; s++) {
      const feeds: Record<string, Value> = {
        ...batch(s),
        lr: value("float32", Float32Array.of(1e-3), []),
        step: value("float32", Float32Array.of(s), []),
      };
      for (const f of noise) feeds[f.name] = noiseFeed(SEED, s, f);
      losses.push((yield* ex.run(feeds)).get(LOSS)!.data[0] as number);
    }
    return losses;
  });

const relative = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

Deno.test({
  name: deviceTestName(
    "webgpu: the quickstart model trains and infers on the device as on the CPU",
    unavailable,
  ),
  ignore: unavailable !== undefined,
  sanitizeResources: false,
  fn: async (t) => {
    const dir = await mkdtemp(join(tmpdir(), "kappa-webgpu-quickstart-"));
    const scope = Effect.runSync(Scope.make());
    const run = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) =>
      Effect.runPromise(effect.pipe(Effect.provideService(Scope.Scope, scope)));
    try {
      const g = trainingGraph(model, shapes, optimizerConfig(quickstart.train));
      const trainPlan = plan("train", g, [graphStage(g, { name: "train" })]);
      const open = (provider: Provider, profile?: string) =>
        run(execute(trainPlan, {
          seed: SEED,
          provider,
          ...(profile ? { profilePrefix: join(dir, profile) } : {}),
        }));
      const cpu = await open("cpu"), gpu = await open("webgpu", "train");
      const initial = copyHost(cpu.state);

      await t.step(
        "10 training steps: losses within 1e-4 relative, parameters within 1e-3 (lr) and 10 % of their movement",
        async () => {
          const started = performance.now();
          const gpuLosses = await run(trainSteps(gpu, 0, 10));
          const gpuSeconds = (performance.now() - started) / 1000;
          const cpuLosses = await run(trainSteps(cpu, 0, 10));
          console.error(`losses cpu ${cpuLosses.map((l) => l.toFixed(6)).join(" ")}`);
          console.error(
            `losses gpu ${gpuLosses.map((l) => l.toFixed(6)).join(" ")} (${gpuSeconds.toFixed(1)} s)`,
          );
          for (const [i, l] of gpuLosses.entries()) {
            assert(relative(l, cpuLosses[i]) <= 1e-4, `step ${i + 1}: webgpu loss ${l}, cpu ${cpuLosses[i]}`);
          }
          const host = await run(gpu.hostState());
          let worst = 0, worstName = "";
          let worstAbs = 0;
          for (const [name, v] of cpu.state) {
            const a = v.data as Float32Array, b = host.get(name)!.data as Float32Array;
            const a0 = initial.get(name)!.data as Float32Array;
            // Relative to how far the CPU run moved the tensor: Adam's steps are ~lr whatever the gradient's
            // size, so a tensor with tiny gradients moves by lr in directions set by rounding noise.
            const moved = a.reduce((m, x, i) => Math.max(m, Math.abs(x - a0[i])), 1e-6);
            for (let i = 0; i < a.length; i++) {
              const d = Math.abs(a[i] - b[i]);
              worstAbs = Math.max(worstAbs, d);
              if (d / moved > worst) [worst, worstName] = [d / moved, name];
            }
          }
          console.error(`parameters: largest absolute difference ${worstAbs.toExponential(2)}`);
          console.error(
            `parameters: largest difference ${
              worst.toExponential(2)
            } of the tensor's movement (${worstName})`,
          );
          // Stated tolerance, per element: at most lr (1e-3, the size of one Adam step) in absolute terms, and
          // at most 10 % of how far the CPU run moved the tensor in the 10 steps.
          assert(worstAbs <= 1e-3, `a parameter differs by ${worstAbs} (lr 1e-3)`);
          assert(worst <= 0.1, `${worstName}: differs by ${worst} of how far it moved`);
        },
      );

      await t.step(
        "checkpoint (read back) + resume on webgpu = uninterrupted webgpu run, bitwise",
        async () => {
          for (const [k, v] of initial) gpu.state.set(k, v);
          await run(trainSteps(gpu, 0, 10));
          const straight = copyHost(await run(gpu.hostState()));
          for (const [k, v] of initial) gpu.state.set(k, v);
          await run(trainSteps(gpu, 0, 5));
          const checkpoint = copyHost(await run(gpu.hostState()));
          for (const [k, v] of checkpoint) gpu.state.set(k, v);
          await run(trainSteps(gpu, 5, 10));
          const resumed = await run(gpu.hostState());
          for (const [name, v] of straight) {
            const a = v.data as Float32Array, b = resumed.get(name)!.data as Float32Array;
            assert(a.every((x, i) => Object.is(x, b[i])), `${name} differs after resuming`);
          }
        },
      );

      const inference = inferenceGraph(model, shapes);
      const infer = (provider: Provider, state: Map<string, Value>, profile?: string) =>
        run(Effect.gen(function* () {
          const ex = yield* execute(plan("infer", inference, [graphStage(inference)]), {
            provider,
            ...(profile ? { profilePrefix: join(dir, profile) } : {}),
          });
          for (const name of ex.state.keys()) ex.state.set(name, state.get(name)!);
          const out = yield* ex.run({ images: batch(11).images });
          return {
            classes: out.get(CLASSES)!.data as BigInt64Array,
            logits: out.get(LOGITS)!.data as Float32Array,
          };
        }));

      await t.step(
        "inference: classes on >= 99.9 % of pixels, logits within 1e-3 of their range",
        async () => {
          const trained = copyHost(cpu.state);
          const [c, d] = [await infer("cpu", trained), await infer("webgpu", trained, "infer")];
          const same = c.classes.filter((v, i) => v === d.classes[i]).length / c.classes.length;
          const range = Math.max(...c.logits.map(Math.abs));
          const worst = Math.max(...c.logits.map((v, i) => Math.abs(v - d.logits[i])));
          console.error(
            `inference: ${(100 * same).toFixed(2)} % of pixels agree; logits within ${
              worst.toExponential(2)
            }`,
          );
          assert(same >= 0.999, `${same}`);
          assert(worst <= 1e-3 * range, `logits differ by ${worst} (largest |logit| ${range})`);
        },
      );

      await t.step("an exported model runs on webgpu with the CPU's classes", async () => {
        const e = {
          ...quickstart,
          data: { ...quickstart.data, train: { ...quickstart.data.train, cropSize: [H, W] as const } },
        };
        const host = copyHost(cpu.state);
        const { bytes } = exportModel(e, host, Effect.runSync(exportedModel(e, host)));
        const session = await run(openSession("export", bytes, { provider: "webgpu" }));
        const images = batch(11).images;
        const two = value(
          "float32",
          new Float32Array([...images.data as Float32Array, ...images.data as Float32Array]),
          [
            2,
            3,
            H,
            W,
          ],
        );
        const out = await runSession(session, { images: two });
        const expected = (await infer("cpu", copyHost(cpu.state))).classes;
        const got = out[CLASSES].data as BigInt64Array;
        const same = expected.filter((v, i) => v === got[i] && v === got[i + expected.length]).length;
        assert(same / expected.length >= 0.999, `${same} of ${expected.length} pixels agree`);
      });

      await Effect.runPromise(Scope.close(scope, Exit.void));
      await t.step("no node of the training or inference graph ran on the CPU", () => {
        // TopK and ArgMax included: their webgpu lowering computes the indices on the device.
        const train = nodesOnCpu(join(dir, "train")), infer = nodesOnCpu(join(dir, "infer"));
        console.error(`on the CPU: training graph ${train.size} node(s), inference graph ${infer.size}`);
        assertEquals(Object.fromEntries(train), {}, "training graph");
        assertEquals(Object.fromEntries(infer), {}, "inference graph");
      });
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void));
      await rm(dir, { recursive: true });
    }
  },
});
