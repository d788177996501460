/**
 * The webgpu provider's runtime: why an adapter is missing (classified from what Dawn prints), state
 * that stays on the device between runs and is read back only on request, host↔device bytes, and the
 * refusal to feed a device value to a CPU session. Device tests skip (saying why) without an adapter.
 */
import { Effect, Exit } from "effect";
import { assert, assertEquals } from "./assert.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { ones } from "../ir/init.ts";
import { execute } from "../runtime/execute.ts";
import { graphStage, NEXT, plan } from "../ir/plan.ts";
import { onHost, value } from "../ir/value.ts";
import { classifyWebGpuFailure, describeWebGpuFailure } from "../runtime/webgpu_diagnosis.ts";
import { deviceTestName, webgpuUnavailable } from "./webgpu_device.ts";
import { hostStatePlan } from "./host_state_plan.ts";

const unavailable = await webgpuUnavailable("webgpu_runtime_test.ts");

// What Dawn printed on this machine before and after installing Vulkan (trimmed to the relevant lines).
const DAWN_NO_LOADER =
  "Warning: Couldn't load Vulkan: libvulkan.so.1: cannot open shared object file: No such " +
  "file or directory\n    at operator() (/build/Release/_deps/dawn-src/src/dawn/native/vulkan/BackendVk.cpp:368)\n";
const DAWN_NO_DRIVER = "Warning: loader_get_json: Failed to open JSON file /nonexistent.json\n" +
  "Warning: vkCreateInstance: Found no drivers!\n" +
  "Warning: vkCreateInstance failed with VK_ERROR_INCOMPATIBLE_DRIVER\n    at CheckVkSuccessImpl (...)\n";
const DAWN_REJECTED =
  "Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16\n" +
  "Warning: Vulkan shaderUniformBufferArrayDynamicIndexing required.\n";

Deno.test("webgpu diagnosis: no loader, no device and a rejected adapter are told apart", () => {
  const noLoader = classifyWebGpuFailure(DAWN_NO_LOADER);
  assertEquals(noLoader._tag, "NoLoader");
  assert(
    describeWebGpuFailure(noLoader).startsWith("no Vulkan loader: Couldn't load Vulkan: libvulkan.so.1"),
  );
  const noDevice = classifyWebGpuFailure(DAWN_NO_DRIVER);
  assertEquals(noDevice._tag, "NoDevice");
  assert(describeWebGpuFailure(noDevice).includes("found no device: vkCreateInstance: Found no drivers!"));
  assertEquals(classifyWebGpuFailure("")._tag, "NoDevice");
  const rejected = classifyWebGpuFailure(DAWN_REJECTED);
  assertEquals(rejected, {
    _tag: "AdapterRejected",
    detail: "Vulkan shaderUniformBufferArrayDynamicIndexing required.",
  });
  assert(
    describeWebGpuFailure(rejected).startsWith("Dawn rejected the Vulkan adapter: Vulkan shaderUniform"),
  );
});

/** Opens a webgpu session in a child process with `env` and returns its first error line ("" if none). */
const childError = async (env: Record<string, string>) => {
  const code = `
    import { Effect, Exit } from "effect";
    import { Graph } from "./ir/graph.ts";
    import * as o from "./ir/ops.ts";
    import { graphStage, plan } from "./ir/plan.ts";
    import { execute } from "./runtime/execute.ts";
    const g = new Graph("t");
    g.output("y", o.neg(o.input(g, "x", [1])));
    const exit = await Effect.runPromiseExit(Effect.scoped(execute(plan("t", g, [graphStage(g)]), { provider: "webgpu" })));
    console.log(Exit.isFailure(exit) ? exit.cause.toString().split("\\n")[0] : "");
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", "--ext=ts", code],
    env,
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(out.stdout).trim();
};

const hasLoader = (() => {
  try {
    Deno.dlopen("libvulkan.so.1", {}).close();
    return true;
  } catch {
    return false;
  }
})();

Deno.test("webgpu provider error: a loader without drivers is reported as such, not as a missing loader", async () => {
  // The Vulkan loader reads its drivers from VK_DRIVER_FILES (VK_ICD_FILENAMES before 1.3.207).
  const text = await childError({
    VK_DRIVER_FILES: "/nonexistent.json",
    VK_ICD_FILENAMES: "/nonexistent.json",
  });
  assert(text.includes('execution provider "webgpu" is unavailable'), text);
  if (hasLoader) assert(text.includes("the Vulkan loader is installed but found no device"), text);
  else assert(text.includes("no Vulkan loader: Couldn't load Vulkan"), text);
});

/** A counter state `c` that each run adds the fed `x` to, and the sum as an ordinary output. */
const counterPlan = () => {
  const g = new Graph("counter");
  const x = o.input(g, "x", [3]);
  const c = o.variable(g, "c", [3], ones, { trainable: false });
  const next = o.add(c, x);
  g.output(`${NEXT}c`, next);
  g.output("total", o.sum(next));
  return plan("counter", g, [graphStage(g)]);
};

Deno.test({
  name: deviceTestName(
    "webgpu: state stays on the device between runs; only outputs and read-backs cross to the host",
    unavailable,
  ),
  ignore: unavailable !== undefined,
  fn: async () => {
    const x = value("float32", Float32Array.of(1, 2, 3), [3]);
    const trace = (deviceState: boolean) =>
      Effect.runPromise(Effect.scoped(Effect.gen(function* () {
        const ex = yield* execute(counterPlan(), { provider: "webgpu", deviceState });
        const totals: number[] = [], bytes: number[][] = [];
        for (let i = 0; i < 3; i++) {
          totals.push((yield* ex.run({ x })).get("total")!.data[0] as number);
          bytes.push([ex.transfers.toDevice, ex.transfers.toHost]);
        }
        const onDevice = !onHost(ex.state.get("c")!);
        const host = yield* ex.hostState();
        return {
          totals,
          bytes,
          onDevice,
          state: Array.from(host.get("c")!.data as Float32Array),
          afterReadBack: [ex.transfers.toDevice, ex.transfers.toHost],
        };
      })));
    const device = await trace(true), host = await trace(false);
    assertEquals(device.totals, [9, 15, 21]);
    assertEquals(device.state, [4, 7, 10]);
    assert(device.onDevice);
    // Run 1: x (12 B) and the initial c (12 B) go up, total (4 B) comes down; later runs: x and total only.
    assertEquals(device.bytes, [[24, 4], [36, 8], [48, 12]]);
    assertEquals(device.afterReadBack, [48, 24]); // + c read back (12 B)
    // Without device-resident state, c goes up and comes down on every run.
    assertEquals(host.totals, device.totals);
    assertEquals(host.state, device.state);
    assert(!host.onDevice);
    assertEquals(host.bytes, [[24, 16], [48, 32], [72, 48]]);
  },
});

Deno.test({
  name: deviceTestName(
    "webgpu: a device value fed to a CPU session is refused with a clear error",
    unavailable,
  ),
  ignore: unavailable !== undefined,
  fn: async () => {
    const x = value("float32", Float32Array.of(1, 2, 3), [3]);
    const exit = await Effect.runPromiseExit(Effect.scoped(Effect.gen(function* () {
      const gpu = yield* execute(counterPlan(), { provider: "webgpu" });
      yield* gpu.run({ x });
      const cpu = yield* execute(counterPlan());
      cpu.state.set("c", gpu.state.get("c")!);
      return yield* cpu.run({ x });
    })));
    assert(Exit.isFailure(exit));
    const text = exit.cause.toString();
    assert(
      text.includes('input "c" is a gpu-buffer value on the webgpu device, which a cpu session cannot read'),
      text,
    );
  },
});

Deno.test({
  name: deviceTestName(
    "webgpu: a host stage's own state stays a host array and is never uploaded",
    unavailable,
  ),
  ignore: unavailable !== undefined,
  fn: async () => {
    const x = value("float32", Float32Array.of(1, 2, 3), [3]);
    const out = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const ex = yield* execute(hostStatePlan(), { provider: "webgpu" });
      const totals: number[] = [], bytes: number[][] = [];
      for (let i = 0; i < 3; i++) {
        totals.push((yield* ex.run({ x })).get("total")!.data[0] as number);
        bytes.push([ex.transfers.toDevice, ex.transfers.toHost]);
      }
      return { totals, bytes, onHost: onHost(ex.state.get("seen")!), seen: ex.state.get("seen")!.data[0] };
    })));
    assertEquals(out.totals, [7, 8, 9]);
    // Per run: x (12 B) and seenNow (4 B) go up, total (4 B) comes down; `seen` never moves.
    assertEquals(out.bytes, [[16, 4], [32, 8], [48, 12]]);
    assert(out.onHost);
    assertEquals(out.seen, 3);
  },
});
