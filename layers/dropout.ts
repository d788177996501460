/**
 * Dropout whose randomness is a graph input.
 *
 * ONNX Runtime's random ops keep generator state inside the session, so a resumed run would draw
 * different masks. Instead each dropout site reads uniform noise from an input named
 * `noise:<scope>.dropout`, which the training loop fills from `random(seed, step, site)`: masks are a
 * pure function of (seed, step, site), and a resumed run draws exactly the masks it would have drawn.
 * Generating the noise costs host time proportional to the activations, so CPU presets use rate 0.
 */
import type { Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";

/** The prefix of graph inputs that the training loop fills with uniform [0, 1) noise. */
export const NOISE = "noise:";

export const dropout = (x: Tensor, rate: number, { name = "dropout" }: { name?: string } = {}): Tensor => {
  if (rate === 0) return x;
  const noise = o.input(x.graph, `${NOISE}${x.graph.qualify(name)}`, x.shape, "float32");
  return o.dropout(x, o.less(noise, 1 - rate), rate);
};
