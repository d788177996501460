/**
 * What the panoptic grid's RESULTS.md section says in words: one finding per row against the baseline
 * (a difference counts when it exceeds twice the larger seed std of the two), then the likely causes,
 * each stated only when the numbers it explains are there. Pure: `grid panoptic` measures, this writes.
 */
import { fixed } from "../figures/markdown.ts";
import { mean, std } from "../figures/stats.ts";

/** Rows in table order, with what the papers claim for each (ReMaX's and RankSeg's own words). */
export const ROWS: Record<string, { readonly label: string; readonly paper: string }> = {
  baseline: { label: "kMaX-style baseline", paper: "—" },
  remask: { label: "+ ReMask", paper: "ReMaX: improves PQ over the baseline" },
  reclass: { label: "+ ReClass", paper: "ReMaX: improves PQ over the baseline" },
  remax: { label: "+ ReMask + ReClass (ReMaX)", paper: "ReMaX: the largest gain; no inference cost" },
  rankseg: { label: "+ RankSeg query classification", paper: "RankSeg (Mask2Former + RankSeg): higher PQ" },
};

export const rowLabel = (row: string): string => ROWS[row]?.label ?? row;

/** One seed's evaluation (fractions, as panopticapi reports them). */
export interface PanopticRunResult {
  readonly pq: number;
  readonly pqTh: number;
  readonly pqSt: number;
  readonly mIoU: number;
}

export interface PanopticRowResult {
  readonly row: string;
  readonly runs: readonly PanopticRunResult[];
  /** Inference ms of the row's graph, measured beside the others. */
  readonly inference: number;
}

/** `grid panoptic diagnose`'s means for one run: the class head and ReMask's gate on training batches. */
export type Diagnostics = ReadonlyMap<string, number>;

const pqs = (r: { runs: readonly PanopticRunResult[] }) => r.runs.map((x) => x.pq);

/**
 * One line per row against the baseline, and the baseline against the trivial predictor. Row labels are
 * bold: a list item that starts with "+" would be read (and formatted) as a nested list.
 */
export const panopticFindings = (rows: readonly PanopticRowResult[], trivialPq: number): string[] => {
  const base = rows.find((r) => r.row === "baseline");
  if (!base || base.runs.length === 0) return ["- no baseline runs yet"];
  const out = [
    `- **baseline vs trivial**: ${fixed(100 * mean(pqs(base)), 2)} vs ${fixed(100 * trivialPq, 2)} PQ (${
      mean(pqs(base)) - 2 * std(pqs(base)) > trivialPq ? "clearly above" : "NOT clearly above"
    })`,
  ];
  for (const r of rows) {
    if (r === base || r.runs.length === 0) continue;
    const diff = mean(pqs(r)) - mean(pqs(base));
    const spread = 2 * Math.max(std(pqs(r)), std(pqs(base)));
    const verdict = Math.abs(diff) > spread ? (diff > 0 ? "better" : "worse") : "within the seed spread";
    out.push(
      `- **${rowLabel(r.row)}**: ${diff >= 0 ? "+" : ""}${fixed(100 * diff, 2)} PQ (2σ = ${
        fixed(100 * spread, 2)
      }): ${verdict}; inference ${fixed(r.inference, 1)} ms vs ${fixed(base.inference, 1)} ms`,
    );
  }
  const same = rows.filter((r) => ["baseline", "remask", "reclass", "remax"].includes(r.row));
  if (same.length > 1) {
    const ms = same.map((r) => r.inference);
    out.push(
      `- **inference**: ${
        same.map((r) => rowLabel(r.row)).join(", ")
      } run one and the same inference graph ` +
        "(tests/panoptic_model_test.ts compares the printed graphs); their measured times differ by up to " +
        `${
          fixed((100 * (Math.max(...ms) - Math.min(...ms))) / Math.min(...ms), 0)
        } %, which is measurement noise.`,
    );
  }
  return out;
};

/**
 * The likely causes, from the grid's numbers and the diagnostics of the baseline's and ReMask's first
 * seeds (`diagnose` keys: matchedClassProb, confidentShare, matchedReMaskGate).
 */
export const panopticLikelyCauses = (
  rows: readonly PanopticRowResult[],
  diagnostics: { readonly baseline?: Diagnostics; readonly remask?: Diagnostics },
  budget: { readonly steps: number; readonly batch: number },
): string[] => {
  const byRow = new Map(rows.map((r) => [r.row, r]));
  const base = byRow.get("baseline");
  if (!base || base.runs.length === 0) return [];
  const out: string[] = [];
  const th = mean(base.runs.map((x) => x.pqTh)), st = mean(base.runs.map((x) => x.pqSt));
  const d = diagnostics.baseline;
  if (th < st / 2 && d) {
    out.push(
      `- **Things are nearly missed** (baseline PQ_th ${fixed(100 * th, 2)} vs PQ_st ${
        fixed(100 * st, 2)
      }). ` +
        `After ${budget.steps} steps of batch ${budget.batch}, a matched query gives its ground-truth class ` +
        `a probability of ${fixed(d.get("matchedClassProb") ?? NaN, 3)} on average, and ${
          fixed(100 * (d.get("confidentShare") ?? NaN), 1)
        } % of all queries reach a confidence of 0.5, merging's stuff threshold (baseline seed 0, 8 training ` +
        "batches, `deno task grid panoptic diagnose`). So merging keeps segments only under the low " +
        "thresholds calibration picks on train (the table's column), and a thing needs its instance's mask " +
        "right as well, while a stuff class is one large segment per image.",
    );
  }
  const remask = byRow.get("remask");
  const gate = diagnostics.remask?.get("matchedReMaskGate");
  if (remask && remask.runs.length > 0 && gate !== undefined) {
    const diff = mean(pqs(remask)) - mean(pqs(base));
    const within = Math.abs(diff) <= 2 * Math.max(std(pqs(remask)), std(pqs(base)));
    out.push(
      `- **ReMask's relaxation is small at this budget.** Its gate (the probability that a pixel's semantic ` +
        "class is the query's class; m̃ = m·(1 + gate)) averages " +
        `${fixed(gate, 3)} over the matched queries' own pixels (ReMask seed 0): it is a product of a ` +
        "query's class probability and the pixels' semantic probability, and both are still low at this " +
        `budget (a matched query's ground-truth class gets ${
          fixed(diagnostics.remask?.get("matchedClassProb") ?? NaN, 3)
        }), so the mask logits it trains on differ from the baseline's by about ${fixed(100 * gate, 1)} %${
          within ? ", consistent with a result within the seed spread" : ""
        }.`,
    );
  }
  const unstable = rows.filter((r) =>
    r !== base && r.runs.length > 1 && std(pqs(r)) > 2 * std(pqs(base)) && std(pqs(base)) > 0
  );
  for (const r of unstable) {
    const low = pqs(r).indexOf(Math.min(...pqs(r)));
    out.push(
      `- **${rowLabel(r.row)} is unstable across seeds**: std ${fixed(100 * std(pqs(r)), 2)} vs the ` +
        `baseline's ${fixed(100 * std(pqs(base)), 2)}; seed ${low} scored ${
          fixed(100 * pqs(r)[low], 2)
        } PQ ` +
        `(PQ_st ${fixed(100 * r.runs[low].pqSt, 2)}), so its mean says less than the baseline's.`,
    );
  }
  return out;
};
