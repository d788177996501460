/**
 * Host memory between runs: returning the arrays a run replaced, and keeping freed memory for reuse.
 *
 * onnxruntime-node copies every output of every run into a fresh ArrayBuffer, pre-allocated outputs
 * included (it writes into those, then copies them out too). For a training step that is the whole
 * state (parameters and optimizer moments) once per step. glibc's malloc serves large buffers with mmap
 * and trims freed memory off the heap top, so each step's arrays land on new pages that the kernel
 * maps and zeroes one page fault per 4 KiB; and V8 frees an array only when its wrapper is collected,
 * which for state that lived a whole step is often several steps later. Together: thousands of faults
 * per step, in bursts. Two remedies, both here: the runtime hands a replaced state array back at once
 * (`release`), and malloc keeps freed memory (`retainFreedMemory`), so the next run's arrays reuse the
 * previous run's memory.
 */
import type { HostArray } from "../ir/dtype.ts";

/** glibc's mallopt parameters (malloc.h). */
const M_TRIM_THRESHOLD = -1;
const M_MMAP_THRESHOLD = -3;
/** The largest mmap threshold glibc accepts on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX). */
const MMAP_THRESHOLD = 32 * 2 ** 20;
/** Free memory at the heap top kept rather than returned to the OS. */
const TRIM_THRESHOLD = 2 ** 30;

let retained: boolean | undefined;

/**
 * Raises glibc's mmap and trim thresholds (through Deno's FFI, once per process), so buffers below
 * 32 MiB come from the heap and freed ones stay there for the next allocation. Resident memory then
 * stays near its high-water mark instead of shrinking between runs. Returns whether it took effect:
 * false off Linux, on another C library, or without FFI permission (then nothing changes).
 */
export const retainFreedMemory = (): boolean => {
  if (retained !== undefined) return retained;
  retained = false;
  if (Deno.build.os !== "linux") return retained;
  try {
    const libc = Deno.dlopen("libc.so.6", { mallopt: { parameters: ["i32", "i32"], result: "i32" } });
    retained = libc.symbols.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) === 1 &&
      libc.symbols.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) === 1;
  } catch {
    // No FFI permission, or no glibc: keep the allocator's defaults.
  }
  return retained;
};

/**
 * Frees the memory behind `data` now instead of at the next garbage collection, by detaching its
 * ArrayBuffer (`transfer(0)`); every view of it then has length 0. Only for arrays nobody else reads.
 */
export const release = (data: HostArray): void => {
  const buffer = data.buffer;
  if (buffer instanceof ArrayBuffer && !buffer.detached) buffer.transfer(0);
};
