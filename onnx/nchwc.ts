/**
 * ONNX Runtime's NCHWc block size, as a model that shows it: its ReorderInput (`com.microsoft.nchwc`)
 * reorders [1, c, 1, 2] into blocks of `block` channels, [c / block][1][2][block], so the first position
 * of the second column (value 1 below) lands at index `block`. MLAS picks the block size from the CPU (16
 * with AVX-512, 8 with AVX2), and the NCHWc weights a lowering writes must match it (`ir/primitives.ts`,
 * `lowerNchwcDepthwise`), so it is asked of the ONNX Runtime that runs the graphs rather than assumed.
 */
import type * as P from "onnx-proto";
import onnxProto from "onnx-proto";
import { IR_VERSION, OPSET } from "./lower.ts";
import { NCHWC_DOMAIN } from "../ir/primitives.ts";

const { onnx } = onnxProto as unknown as typeof P;

/** Channels of the probe: a multiple of every block size MLAS uses. */
export const PROBE_CHANNELS = 64;

/** The probe's input [1, 64, 1, 2]: x[c, j] = 2c + j, so the value 1 marks channel 0 of column 1. */
export const probeInput = (): Float32Array => Float32Array.from({ length: 2 * PROBE_CHANNELS }, (_, i) => i);

/** A model with one ReorderInput from `x` [1, 64, 1, 2] to `y`. */
export const nchwcProbeModel = (): Uint8Array => {
  const F = onnx.TensorProto.DataType.FLOAT;
  const info = (name: string) => ({
    name,
    type: {
      tensorType: { elemType: F, shape: { dim: [1, PROBE_CHANNELS, 1, 2].map((d) => ({ dimValue: d })) } },
    },
  });
  return onnx.ModelProto.encode({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: "", version: OPSET }, { domain: NCHWC_DOMAIN, version: 1 }],
    producerName: "kappa",
    graph: {
      name: "nchwc-probe",
      node: [{ opType: "ReorderInput", domain: NCHWC_DOMAIN, input: ["x"], output: ["y"], name: "reorder" }],
      input: [info("x")],
      output: [info("y")],
    },
  }).finish();
};

/** The block size that the probe's output shows, or undefined when it shows none (not NCHWc blocks). */
export const blockOfProbe = (output: ArrayLike<number>): number | undefined => {
  const block = Array.prototype.indexOf.call(output, 1) as number;
  if (block < 2 || PROBE_CHANNELS % block !== 0) return undefined;
  // Every value where the blocked layout puts it: (block b, column j, lane i) holds channel b·block + i.
  for (let b = 0; b < PROBE_CHANNELS / block; b++) {
    for (let j = 0; j < 2; j++) {
      for (let i = 0; i < block; i++) {
        if (output[(b * 2 + j) * block + i] !== 2 * (b * block + i) + j) return undefined;
      }
    }
  }
  return block;
};
