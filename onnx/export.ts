/**
 * Self-contained ONNX export: the inference part of a graph with its variables embedded as initializers,
 * optionally with a symbolic batch dimension, runnable by any ONNX Runtime (Python included).
 */
import type { HostArray } from "../ir/dtype.ts";
import type { Graph } from "../ir/graph.ts";
import { toOnnx } from "./lower.ts";
import { GraphError } from "../ir/graph.ts";

export interface ExportOptions {
  /** Graph outputs to export. */
  readonly outputs: readonly string[];
  /** Values of every variable the outputs need, by name. */
  readonly state: ReadonlyMap<string, HostArray>;
  /** The batch size the graph was traced with, exported as the symbolic dimension `batch`. */
  readonly dynamicBatch?: number;
  readonly docString?: string;
  /** The model's `metadata_props`: what a user needs to feed it (sizes, normalization). */
  readonly metadata?: Readonly<Record<string, string>>;
}

export const exportOnnx = (g: Graph, options: ExportOptions): Uint8Array => {
  const lowered = toOnnx(g, {
    outputs: options.outputs,
    initializers: options.state,
    dynamicBatch: options.dynamicBatch === undefined ? undefined : { batch: options.dynamicBatch },
    docString: options.docString,
    metadata: options.metadata,
  });
  if (lowered.variables.length > 0) {
    throw new GraphError({
      path: lowered.variables[0],
      message: `${lowered.variables[0]}: no value to embed in the export`,
    });
  }
  return lowered.bytes;
};
