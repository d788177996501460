/**
 * Whether this process's ONNX Runtime has NCHWc kernels, and their block size (`onnx/nchwc.ts`): asked
 * once per process with a one-node model, whose answer the CPU's vector width decides (16 with AVX-512, 8
 * with AVX2; a build without NCHWc kernels, e.g. on ARM, rejects the model). Graph stages on the CPU are
 * lowered with it, so their depthwise convolutions run on those kernels (`ir/primitives.ts`).
 */
import * as ort from "onnxruntime-node";
import { blockOfProbe, nchwcProbeModel, PROBE_CHANNELS, probeInput } from "../onnx/nchwc.ts";

let asked: Promise<number | undefined> | undefined;

/** ONNX Runtime's NCHWc block size here, or undefined where it has no NCHWc kernels. */
export const nchwcBlockSize = (): Promise<number | undefined> =>
  asked ??= (async () => {
    try {
      const session = await ort.InferenceSession.create(nchwcProbeModel(), { intraOpNumThreads: 1 });
      try {
        const out = await session.run({
          x: new ort.Tensor("float32", probeInput(), [1, PROBE_CHANNELS, 1, 2]),
        });
        return blockOfProbe(out.y.data as Float32Array);
      } finally {
        await session.release();
      }
    } catch {
      return undefined;
    }
  })();
