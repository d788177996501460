/** What the figures were measured on: CPU, cores, memory, ONNX Runtime version. */
import os from "node:os";
import * as ort from "onnxruntime-node";

export interface Machine {
  /** e.g. "AMD EPYC (family 25, model 17; AVX-512, VNNI)". */
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly ort: string;
}

/**
 * The CPU as /proc/cpuinfo describes its first core, with the widest vector extension it reports and
 * whether it has VNNI (int8 dot products that accumulate in int32: without it ONNX Runtime's u8·s8 kernels
 * add pairs of products in a saturating int16, see onnx/quantize.ts).
 */
export const describeCpu = (cpuinfo: string): string => {
  const field = (key: string) => cpuinfo.match(new RegExp(`^${key}\\s*:\\s*(.*)$`, "m"))?.[1]?.trim();
  const flags = new Set((field("flags") ?? "").split(/\s+/));
  const vector = flags.has("avx512f")
    ? "AVX-512"
    : flags.has("avx2")
    ? "AVX2"
    : flags.has("avx")
    ? "AVX"
    : "";
  const details = [
    field("cpu family") && `family ${field("cpu family")}`,
    field("model") && `model ${field("model")}`,
  ].filter(Boolean).join(", ");
  const vnni = flags.has("avx512_vnni") || flags.has("avx_vnni") ? "VNNI" : "";
  const extra = [details, [vector, vnni].filter(Boolean).join(", ")].filter(Boolean).join("; ");
  return `${field("model name") ?? "unknown CPU"}${extra ? ` (${extra})` : ""}`;
};

export const machine = (): Machine => {
  let cpuinfo = "";
  try {
    cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
  } catch { /* not Linux: the model name stays unknown */ }
  return {
    cpu: describeCpu(cpuinfo),
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    ort: ort.env.versions.node ?? ort.env.versions.common,
  };
};
