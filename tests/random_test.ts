import { assertEquals, assertNotEquals } from "./assert.ts";
import { fromState, random } from "../core/random.ts";

Deno.test("random: same address gives the same stream, different keys differ", () => {
  const a = random(7, 1, 2);
  const b = random(7, 1, 2);
  const c = random(7, 1, 3);
  const xs = Array.from({ length: 5 }, () => a.uniform());
  assertEquals(xs, Array.from({ length: 5 }, () => b.uniform()));
  assertNotEquals(xs, Array.from({ length: 5 }, () => c.uniform()));
});

Deno.test("random: state round-trips and normal has unit moments", () => {
  const r = random(1);
  r.uniform();
  const saved = fromState(r.state());
  assertEquals(r.uniform(), saved.uniform());
  let sum = 0, sq = 0;
  const n = 200_000;
  for (let i = 0; i < n; i++) {
    const x = r.normal();
    sum += x;
    sq += x * x;
  }
  const mean = sum / n, variance = sq / n - mean * mean;
  if (Math.abs(mean) > 0.01 || Math.abs(variance - 1) > 0.01) throw new Error(`moments ${mean} ${variance}`);
});
