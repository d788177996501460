/** What the figures were measured on: CPU, cores, memory, ONNX Runtime version. */
import os from "node:os";
import * as ort from "onnxruntime-node";
import { describeCpu } from "../figures/cpu.ts";

export { describeCpu };

export interface Machine {
  /** e.g. "AMD EPYC (family 25, model 17; AVX-512, VNNI)". */
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly ort: string;
}

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

/**
 * The title of a suite's section for one kind of CPU, e.g. "Performance (segmenter) on AMD EPYC (family 25,
 * model 17; AVX-512, VNNI)": suites that keep one section per CPU kind rewrite only this machine's.
 */
export const sectionTitle = (section: string, cpu: string): string => `${section} on ${cpu}`;
