/**
 * What ONNX Runtime's graph optimizations make of our models: op-type counts as we emit them and as
 * ORT runs them (the model it writes to `optimizedModelFilePath` at level "all"), to see which fusions
 * happen (Gemm, FusedMatMul, BiasGelu, …) and which patterns stay unfused.
 */
import * as ort from "onnxruntime-node";
import { decodeOnnx } from "../profiling.ts";

/** Op types (domain-qualified outside the default domain) and how often each occurs. */
export const opCounts = (bytes: Uint8Array): Map<string, number> => {
  const counts = new Map<string, number>();
  for (const n of decodeOnnx(bytes).graph?.node ?? []) {
    const op = n.domain ? `${n.domain}.${n.opType}` : String(n.opType);
    counts.set(op, (counts.get(op) ?? 0) + 1);
  }
  return counts;
};

/** The op counts of `bytes` after ONNX Runtime's "all" optimizations on this machine. */
export const optimizedOpCounts = async (bytes: Uint8Array): Promise<Map<string, number>> => {
  const dir = await Deno.makeTempDir({ prefix: "kappa-optimized-" });
  try {
    const file = `${dir}/optimized.onnx`;
    const session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: 1,
      graphOptimizationLevel: "all",
      optimizedModelFilePath: file,
      // ORT warns that a model optimized at level "all" is specific to this machine: we only count it.
      logSeverityLevel: 3,
    });
    await session.release();
    return opCounts(await Deno.readFile(file));
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
};

/** Emitted and optimized op counts of one model. */
export interface GraphOps {
  readonly name: string;
  readonly emitted: ReadonlyMap<string, number>;
  readonly optimized: ReadonlyMap<string, number>;
}

export const graphOps = async (name: string, bytes: Uint8Array): Promise<GraphOps> => ({
  name,
  emitted: opCounts(bytes),
  optimized: await optimizedOpCounts(bytes),
});

/** The op types worth a row: the `n` most frequent in either form, then every fused op ORT added. */
export const notableOps = (g: GraphOps, n: number): string[] => {
  const total = (op: string) => Math.max(g.emitted.get(op) ?? 0, g.optimized.get(op) ?? 0);
  const all = [...new Set([...g.emitted.keys(), ...g.optimized.keys()])].sort((a, b) => total(b) - total(a));
  const added = all.filter((op) => !g.emitted.has(op));
  return [...new Set([...all.slice(0, n), ...added])];
};
