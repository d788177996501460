/** Channel-last upsampling and the channel-last cross-entropy against their NCHW forms. */
import { assert, assertClose, assertEquals } from "./assert.ts";
import { runGraph } from "./graph_runner.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { value } from "../ir/value.ts";
import { linearInterpolationMatrix } from "../ir/primitives.ts";
import { regionInterpolationMatrix, resizeChannelsLast } from "../layers/upsample.ts";
import { softmaxCrossEntropy } from "../layers/losses.ts";

const wave = (n: number, f = 0.37) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * f) * 3);

Deno.test("resizeChannelsLast gives ONNX Resize's values on the NCHW transpose", async () => {
  const [b, h, w, c, H, W] = [2, 3, 5, 4, 7, 11];
  const g = new Graph("up");
  const x = o.input(g, "x", [b, h, w, c]);
  g.output("ours", resizeChannelsLast(x, H, W));
  g.output("resize", o.transpose(o.resize(o.transpose(x, [0, 3, 1, 2]), H, W), [0, 2, 3, 1]));
  const out = await runGraph(g, { x: value("float32", wave(b * h * w * c), [b, h, w, c]) });
  assertEquals(out.ours.length, b * H * W * c);
  assertClose(out.ours, out.resize, { atol: 1e-5, rtol: 1e-5 });
});

Deno.test("regionInterpolationMatrix composes upsampling, crop and resize into one matrix", () => {
  const [from, size, valid, output] = [4, 16, 13, 6];
  const m = regionInterpolationMatrix(from, size, valid, output);
  const up = linearInterpolationMatrix(size, from), down = linearInterpolationMatrix(output, valid);
  const signal = [1, -2, 0.5, 3];
  const upsampled = Array.from(
    { length: valid },
    (_, i) => signal.reduce((s, v, j) => s + up[i * from + j] * v, 0),
  );
  const expected = Array.from(
    { length: output },
    (_, i) => upsampled.reduce((s, v, k) => s + down[i * valid + k] * v, 0),
  );
  const actual = Array.from(
    { length: output },
    (_, i) => signal.reduce((s, v, j) => s + m[i * from + j] * v, 0),
  );
  assertClose(actual, expected, { atol: 1e-12 });
  // Every row still averages: its weights sum to 1.
  for (let i = 0; i < output; i++) {
    assertClose(signal.reduce((s, _, j) => s + m[i * from + j], 0), 1, { atol: 1e-12 });
  }
  // No crop and no resize: the plain upsampling matrix.
  assertEquals(Array.from(regionInterpolationMatrix(from, size, size, size)), Array.from(up));
});

Deno.test("softmaxCrossEntropy over the last axis equals it over axis 1 of the transpose", async () => {
  const [b, h, w, k] = [2, 3, 4, 5];
  const g = new Graph("ce");
  const logits = o.input(g, "logits", [b, h, w, k]);
  const labels = o.cast(o.input(g, "labels", [b, h, w], "int32"), "int64");
  g.output("last", softmaxCrossEntropy(logits, labels, { ignoreIndex: 255, axis: -1 }));
  g.output("first", softmaxCrossEntropy(o.transpose(logits, [0, 3, 1, 2]), labels, { ignoreIndex: 255 }));
  const ids = Int32Array.from({ length: b * h * w }, (_, i) => (i % 7 === 3 ? 255 : i % k));
  const out = await runGraph(g, {
    logits: value("float32", wave(b * h * w * k), [b, h, w, k]),
    labels: value("int32", ids, [b, h, w]),
  });
  assert(out.last[0] > 0);
  assertClose(out.last, out.first, { rtol: 1e-6 });
});
