/**
 * Exact minimum-cost assignment (the Hungarian problem) on a dense rectangular cost matrix, in
 * O(r²·c) for r ≤ c: the shortest-augmenting-path form of the Hungarian method (Jonker–Volgenant's
 * augmentation, as SciPy's `linear_sum_assignment` uses), with row potentials `u` and column potentials
 * `v` that keep every reduced cost `cost[i][j] − u[i] − v[j]` non-negative.
 *
 * Rows are assigned one at a time: a Dijkstra-like search from the new row over the columns, with the
 * reduced costs as edge lengths, finds the cheapest alternating path to a free column; potentials are
 * moved by the distances so that the path's edges have reduced cost 0, and the path is flipped. Each
 * search is O(r·c) and there are r of them: min(r, c)² · max(r, c) in all, since a matrix with more rows
 * than columns is solved transposed.
 *
 * Every row is matched when r ≤ c, every column when r > c (the matrix is transposed so that the search
 * always runs from the smaller side). Ties are broken deterministically (lowest column index first), so
 * equal inputs give equal assignments.
 */
import { Data } from "effect";

/** A cost matrix that has no finite optimum: a NaN or an infinite entry, or a size that does not fit. */
export class AssignmentError extends Data.TaggedError("AssignmentError")<{ readonly message: string }> {}

/** An optimal assignment: `colOfRow[i]` is row i's column or −1, `rowOfCol[j]` the reverse. */
export interface Assignment {
  readonly colOfRow: Int32Array;
  readonly rowOfCol: Int32Array;
  /** Σ cost[i][colOfRow[i]] over the matched rows. */
  readonly cost: number;
}

/**
 * Minimum-cost assignment of `rows` × `cols` costs (row-major, `costs[i * cols + j]`); min(rows, cols)
 * pairs. Throws `AssignmentError` on a non-finite cost or a length that is not rows × cols.
 */
export const linearSumAssignment = (costs: ArrayLike<number>, rows: number, cols: number): Assignment => {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new AssignmentError({ message: `assignment: bad size ${rows}×${cols}` });
  }
  if (costs.length !== rows * cols) {
    throw new AssignmentError({
      message: `assignment: ${costs.length} costs for a ${rows}×${cols} matrix (expected ${rows * cols})`,
    });
  }
  for (let k = 0; k < costs.length; k++) {
    if (!Number.isFinite(costs[k])) {
      const [i, j] = [Math.floor(k / cols), k % cols];
      throw new AssignmentError({ message: `assignment: cost[${i}][${j}] is ${costs[k]} (must be finite)` });
    }
  }
  const transposed = rows > cols;
  const [n, m] = transposed ? [cols, rows] : [rows, cols];
  // a(i, j) on the (possibly transposed) n × m problem with n ≤ m.
  const a = transposed
    ? (i: number, j: number) => costs[j * cols + i]
    : (i: number, j: number) => costs[i * cols + j];
  const matchOfCol = shortestAugmentingPaths(a, n, m); // column → row, −1 when free

  const colOfRow = new Int32Array(rows).fill(-1);
  const rowOfCol = new Int32Array(cols).fill(-1);
  let cost = 0;
  for (let j = 0; j < m; j++) {
    const i = matchOfCol[j];
    if (i < 0) continue;
    const [r, c] = transposed ? [j, i] : [i, j];
    colOfRow[r] = c;
    rowOfCol[c] = r;
    cost += costs[r * cols + c];
  }
  return { colOfRow, rowOfCol, cost };
};

/**
 * The n × m problem (n ≤ m) solved row by row; returns each column's row (−1 for the m − n free ones).
 * Index 0 of `match`, `way` and `v` is a virtual column that holds the row being inserted.
 */
const shortestAugmentingPaths = (a: (i: number, j: number) => number, n: number, m: number): Int32Array => {
  const u = new Float64Array(n);
  const v = new Float64Array(m + 1);
  const match = new Int32Array(m + 1).fill(-1); // match[j + 1]: row of column j
  const way = new Int32Array(m + 1); // the previous column on the shortest path to column j
  const dist = new Float64Array(m + 1); // shortest reduced distance from the new row to each column
  const done = new Uint8Array(m + 1);
  for (let row = 0; row < n; row++) {
    match[0] = row;
    dist.fill(Infinity);
    done.fill(0);
    let col = 0; // the column whose row is scanned next; starts at the virtual column
    do {
      done[col] = 1;
      const i = match[col];
      let delta = Infinity;
      let next = -1;
      for (let j = 1; j <= m; j++) {
        if (done[j]) continue;
        const reduced = a(i, j - 1) - u[i] - v[j];
        if (reduced < dist[j]) {
          dist[j] = reduced;
          way[j] = col;
        }
        if (dist[j] < delta) {
          delta = dist[j];
          next = j;
        }
      }
      // Move the potentials by the distance of the nearest free-or-unscanned column: the scanned
      // part of the tree keeps reduced cost 0 on its edges, the rest comes delta closer.
      for (let j = 0; j <= m; j++) {
        if (done[j]) {
          u[match[j]] += delta;
          v[j] -= delta;
        } else dist[j] -= delta;
      }
      col = next;
    } while (match[col] !== -1);
    // Flip the augmenting path back to the virtual column.
    while (col !== 0) {
      const previous = way[col];
      match[col] = match[previous];
      col = previous;
    }
  }
  return match.subarray(1);
};
