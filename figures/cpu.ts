/**
 * The CPU a figure was measured on, named the way every benchmark and result figure names it: model name,
 * family and model numbers, and the widest vector extension (CPUs of one family differ: an AMD EPYC of
 * family 25 may have AVX-512 or only AVX2), with VNNI when present (int8 kernels depend on it).
 */

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

/** This machine's CPU (`describeCpu` of /proc/cpuinfo; "unknown CPU" where there is none). */
export const thisCpu = (): string => {
  try {
    return describeCpu(Deno.readTextFileSync("/proc/cpuinfo"));
  } catch {
    return describeCpu("");
  }
};
