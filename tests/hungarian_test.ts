/**
 * Hungarian matching against brute force on random small matrices (square, more rows than columns and
 * the reverse, many ties), as SciPy's `linear_sum_assignment` is tested; plus hand-checked cases, empty
 * sides and the errors.
 */
import { assert, assertEquals, assertThrowsMessage } from "./assert.ts";
import { linearSumAssignment } from "../host/hungarian.ts";
import { random } from "../core/random.ts";

/** The minimum cost over every injection of the smaller side into the larger, by enumeration. */
const bruteForce = (costs: ArrayLike<number>, rows: number, cols: number) => {
  const transposed = rows > cols;
  const [n, m] = transposed ? [cols, rows] : [rows, cols];
  const at = (i: number, j: number) => transposed ? costs[j * cols + i] : costs[i * cols + j];
  let best = Infinity;
  let bestPick: number[] = [];
  const pick: number[] = [];
  const used = new Uint8Array(m);
  const search = (i: number, sum: number) => {
    if (i === n) {
      if (sum < best) [best, bestPick] = [sum, [...pick]];
      return;
    }
    for (let j = 0; j < m; j++) {
      if (used[j]) continue;
      used[j] = 1;
      pick.push(j);
      search(i + 1, sum + at(i, j));
      pick.pop();
      used[j] = 0;
    }
  };
  search(0, 0);
  // As row → column of the original matrix.
  const colOfRow = new Array(rows).fill(-1);
  bestPick.forEach((j, i) => transposed ? (colOfRow[j] = i) : (colOfRow[i] = j));
  return { cost: best, colOfRow };
};

/** An assignment is a partial permutation with min(rows, cols) pairs whose cost is what it says. */
const checkValid = (costs: ArrayLike<number>, rows: number, cols: number, label: string) => {
  const a = linearSumAssignment(costs, rows, cols);
  assertEquals(a.colOfRow.length, rows, label);
  assertEquals(a.rowOfCol.length, cols, label);
  let pairs = 0, sum = 0;
  for (let i = 0; i < rows; i++) {
    const j = a.colOfRow[i];
    if (j < 0) continue;
    pairs++;
    sum += costs[i * cols + j];
    assertEquals(a.rowOfCol[j], i, `${label}: row ${i} ↔ column ${j}`);
  }
  assertEquals(pairs, Math.min(rows, cols), `${label}: pairs`);
  assertEquals(a.rowOfCol.filter((i) => i >= 0).length, pairs, `${label}: columns`);
  assert(Math.abs(sum - a.cost) < 1e-9, `${label}: cost ${a.cost} vs Σ ${sum}`);
  return a;
};

const SHAPES: [number, number][] = [];
for (let r = 1; r <= 6; r++) for (let c = 1; c <= 6; c++) SHAPES.push([r, c]);
SHAPES.push([7, 7], [2, 9], [9, 2], [3, 8], [8, 3]);

Deno.test("hungarian: equals brute force on random continuous costs (square and rectangular)", () => {
  let checked = 0;
  for (const [rows, cols] of SHAPES) {
    for (let t = 0; t < 20; t++) {
      const rng = random(14, rows, cols, t);
      const costs = Float64Array.from({ length: rows * cols }, () => rng.normal() * 10);
      const label = `${rows}×${cols} #${t}`;
      const ours = checkValid(costs, rows, cols, label);
      const best = bruteForce(costs, rows, cols);
      assert(
        Math.abs(ours.cost - best.cost) < 1e-9,
        `${label}: cost ${ours.cost} vs brute force ${best.cost}`,
      );
      // Continuous costs have a unique optimum (almost surely): the pairs themselves agree.
      assertEquals(Array.from(ours.colOfRow), best.colOfRow, label);
      checked++;
    }
  }
  assertEquals(checked, SHAPES.length * 20);
});

Deno.test("hungarian: optimal under ties (small integer costs) and with negative costs", () => {
  for (const [rows, cols] of SHAPES) {
    for (let t = 0; t < 20; t++) {
      const rng = random(15, rows, cols, t);
      const levels = 1 + (t % 3); // 1 level: every cost equal; 2-3 levels: many ties
      const costs = Float64Array.from({ length: rows * cols }, () => rng.int(levels) - (t % 2 ? 1 : 0));
      const label = `${rows}×${cols} ties #${t}`;
      const ours = checkValid(costs, rows, cols, label);
      assertEquals(ours.cost, bruteForce(costs, rows, cols).cost, label);
      // Deterministic: the same matrix gives the same pairs.
      assertEquals(Array.from(linearSumAssignment(costs, rows, cols).colOfRow), Array.from(ours.colOfRow));
    }
  }
});

Deno.test("hungarian: hand-checked matrices", () => {
  // Row 0 takes its cheap 150; rows 1 and 2 split 400/300 rather than 600/300 or 400/225+…
  const a = linearSumAssignment([400, 150, 400, 400, 450, 600, 300, 225, 300], 3, 3);
  assertEquals(Array.from(a.colOfRow), [1, 0, 2]);
  assertEquals(a.cost, 850);
  // A 4th column that is cheap for everyone goes to row 1, which would lose most without it.
  const b = linearSumAssignment([400, 150, 400, 1, 400, 450, 600, 2, 300, 225, 300, 3], 3, 4);
  assertEquals(Array.from(b.colOfRow), [1, 3, 0]);
  assertEquals(b.cost, 452);
  // The transpose of b: 4 rows, 3 columns; one row stays free.
  const bt = linearSumAssignment([400, 400, 300, 150, 450, 225, 400, 600, 300, 1, 2, 3], 4, 3);
  assertEquals(Array.from(bt.colOfRow), [2, 0, -1, 1]);
  assertEquals(bt.cost, 452);
  // Greedy (row 0 → its 8) is not optimal: 10 + 1 + 7 = 18 < 8 + 8 + 9 = 25.
  const c = linearSumAssignment([10, 10, 8, 9, 8, 1, 9, 7, 4], 3, 3);
  assertEquals(c.cost, 18);
  assertEquals(Array.from(c.colOfRow), [0, 2, 1]);
});

Deno.test("hungarian: a matching-sized problem (128 queries × 40 targets) is consistent", () => {
  const [rows, cols] = [128, 40];
  const rng = random(16);
  const costs = Float64Array.from({ length: rows * cols }, () => -rng.uniform());
  const a = checkValid(costs, rows, cols, "128×40");
  // Optimality is invariant to adding a constant to a column (every column is matched exactly once) …
  const shifted = costs.map((x, k) => x + (k % cols) * 3);
  const b = linearSumAssignment(shifted, rows, cols);
  assertEquals(Array.from(b.colOfRow), Array.from(a.colOfRow));
  // … and no exchange of two matched rows' columns, nor a move to a free row, is cheaper.
  for (let j = 0; j < cols; j++) {
    const i = a.rowOfCol[j];
    for (let k = 0; k < rows; k++) {
      const l = a.colOfRow[k];
      const now = costs[i * cols + j] + (l >= 0 ? costs[k * cols + l] : 0);
      const swapped = costs[k * cols + j] + (l >= 0 ? costs[i * cols + l] : 0);
      assert(swapped >= now - 1e-12, `swap rows ${i} and ${k} improves`);
    }
  }
});

Deno.test("hungarian: empty sides and bad input", () => {
  const empty = linearSumAssignment([], 3, 0);
  assertEquals(Array.from(empty.colOfRow), [-1, -1, -1]);
  assertEquals(empty.cost, 0);
  assertEquals(Array.from(linearSumAssignment([], 0, 2).rowOfCol), [-1, -1]);
  assertThrowsMessage(() => linearSumAssignment([1, NaN, 2, 3], 2, 2), "cost[0][1] is NaN (must be finite)");
  assertThrowsMessage(() => linearSumAssignment([1, 2, Infinity], 1, 3), "cost[0][2] is Infinity");
  assertThrowsMessage(() => linearSumAssignment([1, 2, 3], 2, 2), "3 costs for a 2×2 matrix (expected 4)");
});
