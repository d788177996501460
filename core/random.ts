/**
 * Seeded, counter-addressable random numbers.
 *
 * Every random choice in kappa (parameter initialization, dropout masks, augmentation) draws from a
 * `Random` made by `random(seed, ...keys)`. The keys address an independent stream — e.g.
 * `random(seed, EPOCH, epoch, index)` for one sample's augmentation — so results do not depend on the
 * order in which concurrent work happens, and a resumed run can recreate any stream from its address.
 *
 * The generator is xoshiro128** seeded through splitmix32 hashing of (seed, keys); its state is four
 * 32-bit words and can be saved and restored (`state()` / `fromState`).
 */

export interface Random {
  /** Uniform float in [0, 1) with 32 bits of randomness. */
  readonly uniform: () => number;
  /** Uniform integer in [0, n). */
  readonly int: (n: number) => number;
  /** Standard normal sample (Box–Muller). */
  readonly normal: () => number;
  /** The four 32-bit state words, for checkpointing. */
  readonly state: () => [number, number, number, number];
}

const splitmix32 = (x: number): number => {
  x = (x + 0x9e3779b9) | 0;
  let z = x;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
};

/** Hashes a seed and a key path into one 32-bit word. */
export const hashKeys = (seed: number, keys: readonly number[]): number => {
  let h = splitmix32(seed >>> 0);
  for (const k of keys) h = splitmix32((h ^ Math.imul(k >>> 0, 0x27d4eb2f)) >>> 0);
  return h;
};

const rotl = (x: number, k: number) => (x << k) | (x >>> (32 - k));

/** A generator restored from saved state words. */
export const fromState = (words: readonly [number, number, number, number]): Random => {
  let [a, b, c, d] = words.map((w) => w >>> 0);
  if ((a | b | c | d) === 0) a = 1; // xoshiro's all-zero state is a fixed point
  const nextU32 = () => {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return result;
  };
  const uniform = () => nextU32() / 4294967296;
  return {
    uniform,
    int: (n) => Math.floor(uniform() * n),
    // Box–Muller without caching the second sample, so `state()` is the whole state.
    normal: () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform()),
    state: () => [a >>> 0, b >>> 0, c >>> 0, d >>> 0],
  };
};

/** An independent generator addressed by a seed and a key path. */
export const random = (seed: number, ...keys: readonly number[]): Random => {
  const h = hashKeys(seed, keys);
  return fromState([
    splitmix32(h),
    splitmix32(h ^ 0x1b873593),
    splitmix32(h ^ 0xcc9e2d51),
    splitmix32(h ^ 0x38b34ae5),
  ]);
};
