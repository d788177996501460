import { Effect } from "effect";
import { assert, assertEquals } from "./assert.ts";
import { CASES, formatReport, gradcheck, NON_DIFFERENTIABLE } from "../runtime/gradcheck.ts";
import { type Op, RULES } from "../ir/primitives.ts";

Deno.test("gradcheck: every differentiable primitive's VJP matches central differences", async () => {
  const report = await Effect.runPromise(gradcheck());
  const text = formatReport(report);
  const differentiable = (Object.keys(RULES) as Op[]).filter((op) => !NON_DIFFERENTIABLE.has(op));
  assertEquals(report.failedOps, [], text);
  assertEquals(report.checkedOps.length, differentiable.length);
  assert(text.endsWith(`gradcheck: ${differentiable.length} ops checked, 0 failed`), text);
  for (const r of report.results) assert(r.maxError <= r.tolerance, `${r.name}: ${r.maxError}`);
});

Deno.test("gradcheck: a wrong VJP is caught", async () => {
  // exp's rule, but claiming d/dx exp(x) = 2·exp(x): the check must fail.
  const original = RULES.exp.vjp;
  (RULES.exp as { vjp: typeof original }).vjp = (
    p,
    outs,
    cts,
    o,
  ) => [o.mul(original(p, outs, cts, o)[0]!, 2)];
  try {
    const report = await Effect.runPromise(gradcheck(CASES.filter((c) => c.ops.includes("exp"))));
    assert(report.failedOps.includes("exp"), formatReport(report));
  } finally {
    (RULES.exp as { vjp: typeof original }).vjp = original;
  }
});
