/**
 * The whole parity run: the official code's outputs (reference.py, one Python process per method, both
 * at once) and kappa's checks against them, then the LarvSeg hand cases. Used by `deno task parity`
 * and by tests/parity_*_test.ts.
 */
import { type Method, type Reference, runReference } from "./reference_data.ts";
import { ranksegChecks } from "./rankseg.ts";
import { kmaxChecks } from "./kmax.ts";
import { larvsegChecks } from "./larvseg.ts";
import type { Check } from "./compare.ts";

export const CHECKS: Record<Method, (ref: Reference) => Promise<Check[]>> = {
  rankseg: ranksegChecks,
  kmax: kmaxChecks,
};

export interface ParityRun {
  readonly rows: readonly Check[];
  readonly torch: string;
  /** Wall seconds: the official code (both processes, concurrently) and kappa's checks. */
  readonly referenceSeconds: number;
  readonly kappaSeconds: number;
}

export const runParity = async (python: string): Promise<ParityRun> => {
  const t0 = performance.now();
  const methods: Method[] = ["rankseg", "kmax"];
  const refs = await Promise.all(methods.map((m) => runReference(m, python)));
  const t1 = performance.now();
  const rows: Check[] = [];
  for (const ref of refs) rows.push(...await CHECKS[ref.method](ref));
  rows.push(...await larvsegChecks());
  return {
    rows,
    torch: refs[0].torch,
    referenceSeconds: (t1 - t0) / 1000,
    kappaSeconds: (performance.now() - t1) / 1000,
  };
};

/** One line per failed check, naming the component, what was compared and by how much it missed. */
export const describeFailures = (rows: readonly Check[]): string[] =>
  rows.filter((r) => !r.passed).map((r) =>
    r.kind === "exact"
      ? `${r.method} · ${r.component} · ${r.compared}: ${r.detail}`
      : `${r.method} · ${r.component} · ${r.compared}: max rel ${r.maxRel.toExponential(2)} > ` +
        `${r.tolerance.toExponential(0)} (max |Δ| ${r.maxAbs.toExponential(2)}${
          r.detail ? `; ${r.detail}` : ""
        })`
  );
