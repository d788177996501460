/**
 * For the parity tests that run the official code: the Python with torch, numpy and scipy, or why there
 * is none. Without one the tests are skipped and say why in their names (`deno test --quiet` hides console
 * output); with KAPPA_EXPECT_PARITY=1 (set by .ci/run after .ci/setup installed them) a missing torch
 * fails them instead.
 */
import { findPython } from "../parity/reference_data.ts";
import type { Check } from "../parity/compare.ts";
import { describeFailures } from "../parity/run.ts";
import { assert } from "./assert.ts";

export const EXPECT_PARITY = "KAPPA_EXPECT_PARITY";

/** Registers `fn(python)` as a test, skipped (or failed, under KAPPA_EXPECT_PARITY=1) without torch. */
export const parityTest = async (name: string, fn: (python: string) => Promise<void>): Promise<void> => {
  const { python, reason } = await findPython();
  if (python) return Deno.test(name, () => fn(python));
  if (Deno.env.get(EXPECT_PARITY) === "1") {
    return Deno.test(`${name} (${EXPECT_PARITY}=1)`, () => {
      throw new Error(`${EXPECT_PARITY}=1 but ${reason}`);
    });
  }
  Deno.test({ name: `${name} [skipped: ${reason}]`, ignore: true, fn: () => {} });
};

/** Fails naming every check beyond its tolerance; and every expected component must have rows. */
export const assertParity = (rows: readonly Check[], components: readonly string[]): void => {
  const failures = describeFailures(rows);
  assert(failures.length === 0, `${failures.length} parity check(s) failed:\n  ${failures.join("\n  ")}`);
  const missing = components.filter((c) => !rows.some((r) => r.component.startsWith(c)));
  assert(missing.length === 0, `no parity rows for: ${missing.join(", ")}`);
};
