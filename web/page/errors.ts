/**
 * One line for a failure in the page: what failed (a file, the model, a step) and why, with running out
 * of memory named as such (wasm's heap is capped at 4 GiB, a tab's memory by the browser).
 */

const OUT_OF_MEMORY =
  /out of memory|memory access out of bounds|Array buffer allocation failed|bad_alloc|Aborted\(OOM\)|RangeError: .*(?:allocation|length)|could not allocate|WebAssembly\.Memory/i;

const text = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split("\n")[0].trim();

/** `what: why`, where why says "out of memory" when the browser or wasm ran out of it. */
export const describeError = (what: string, e: unknown): string => {
  const why = text(e);
  return OUT_OF_MEMORY.test(why)
    ? `${what}: out of memory (${why}); close other tabs, or use a smaller model, photo or shard`
    : `${what}: ${why}`;
};
