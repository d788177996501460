/**
 * Small assertion helpers for the tests (jsr:@std/assert cannot be fetched here).
 * Errors name what differs and where, like @std/assert's.
 */
import { isDeepStrictEqual } from "node:util";
import { inspect } from "node:util";

export function assert(cond: unknown, message = "assertion failed"): asserts cond {
  if (!cond) throw new Error(message);
}

export const assertEquals = <T>(actual: T, expected: T, message?: string) => {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new Error(`${message ? message + ": " : ""}expected ${inspect(expected)}, got ${inspect(actual)}`);
  }
};

export const assertNotEquals = <T>(actual: T, expected: T, message?: string) => {
  if (isDeepStrictEqual(actual, expected)) {
    throw new Error(`${message ?? "values are equal"}: ${inspect(actual)}`);
  }
};

/** |actual - expected| <= atol + rtol * |expected|, element by element. */
export const assertClose = (
  actual: ArrayLike<number> | number,
  expected: ArrayLike<number> | number,
  { atol = 1e-6, rtol = 1e-5, message = "" }: { atol?: number; rtol?: number; message?: string } = {},
) => {
  const a = typeof actual === "number" ? [actual] : Array.from(actual);
  const e = typeof expected === "number" ? [expected] : Array.from(expected);
  if (a.length !== e.length) throw new Error(`${message} length ${a.length} != ${e.length}`);
  for (let i = 0; i < a.length; i++) {
    if (!(Math.abs(a[i] - e[i]) <= atol + rtol * Math.abs(e[i]))) {
      throw new Error(`${message} [${i}]: ${a[i]} vs expected ${e[i]} (atol ${atol}, rtol ${rtol})`);
    }
  }
};

/** Runs `fn` and returns the error message it throws (fails if it does not throw). */
export const assertThrowsMessage = (fn: () => unknown, includes: string | RegExp): string => {
  try {
    fn();
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const ok = typeof includes === "string" ? msg.includes(includes) : includes.test(msg);
    if (!ok) throw new Error(`error message ${JSON.stringify(msg)} does not match ${includes}`);
    return msg;
  }
  throw new Error(`expected an error matching ${includes}`);
};
