/**
 * A content digest of a trained state's parameters: what ties a result computed from the weights (an
 * evaluation record, the merging thresholds calibrated on them) to exactly those weights, whichever file
 * they were read from (`best.safetensors` and `step-000100.safetensors` of one step share it).
 */
import { createHash } from "node:crypto";
import type { Value } from "../ir/value.ts";

/**
 * Hex SHA-256 over the model's own state entries (`model.…`: parameters and kept state such as LarvSeg's
 * memory bank), by name, shape and bytes; optimizer moments and frozen state from other runs are left out.
 */
export const parametersDigest = (state: ReadonlyMap<string, Value>): string => {
  const hash = createHash("sha256");
  for (const name of [...state.keys()].filter((n) => n.startsWith("model.")).sort()) {
    const v = state.get(name)!;
    const data = v.data as ArrayBufferView;
    hash.update(`${name}:${v.dims.join("x")}:${v.type}\n`);
    hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return hash.digest("hex");
};
