/**
 * Child process of `webgpu_diagnosis.ts`: requests a WebGPU adapter by creating a one-node session on
 * the webgpu provider, so that the parent can read what Dawn prints on stderr. Prints "webgpu: ok" on
 * success.
 */
import * as ort from "onnxruntime-node";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { toOnnx } from "../onnx/lower.ts";

const g = new Graph("probe");
g.output("y", o.neg(o.input(g, "x", [1])));
try {
  const session = await ort.InferenceSession.create(toOnnx(g).bytes, { executionProviders: ["webgpu"] });
  await session.release();
  console.log("webgpu: ok");
} catch (e) {
  console.log(`webgpu: ${String(e).split("\n")[0]}`);
}
