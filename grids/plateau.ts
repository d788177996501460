/**
 * Step budgets from learning curves: a grid trains one seed of an experiment with a validation every N
 * steps (`grid_runs.ts` `curveRun`), and its runs train as many steps as the curve took to reach its
 * plateau. The rule, stated in every section that uses it: the plateau is the first evaluation within
 * `tolerance` mIoU (1 by default) of the curve's best evaluation — later evaluations add at most that much.
 */
import type { CurvePoint } from "./grid_runs.ts";

export const DEFAULT_TOLERANCE = 1;

export interface Plateau {
  /** The step of the first evaluation within `tolerance` of the best: the budget. */
  readonly step: number;
  readonly best: CurvePoint;
  readonly tolerance: number;
}

/** The curve's plateau, or undefined for a curve without evaluations. */
export const plateau = (curve: readonly CurvePoint[], tolerance = DEFAULT_TOLERANCE): Plateau | undefined => {
  if (curve.length === 0) return undefined;
  const best = curve.reduce((a, b) => (b.mIoU > a.mIoU ? b : a));
  return { step: curve.find((p) => best.mIoU - p.mIoU <= tolerance)!.step, best, tolerance };
};

/** `--curve STEPS:EVERY` as numbers, or why not. */
export const parseCurveFlag = (text: string): { steps: number; every: number } | string => {
  const m = /^(\d+):(\d+)$/.exec(text.trim());
  if (!m) return `--curve ${text}: expected STEPS:EVERY, e.g. 2000:250`;
  const [steps, every] = [Number(m[1]), Number(m[2])];
  return steps < 1 || every < 1 || every > steps
    ? `--curve ${text}: need 1 ≤ EVERY ≤ STEPS`
    : { steps, every };
};

/**
 * The sentence a section states its budget with: what the curve reached where, the rule, and the step it
 * picked; `curveName` names the curve's spec.
 */
export const budgetSentence = (curveName: string, curve: readonly CurvePoint[], p: Plateau): string => {
  const last = curve.at(-1)!;
  const perStep = last.seconds === null ? "" : `, ${(last.seconds / last.step).toFixed(2)} s per step`;
  return `Step budget ${p.step}: the learning curve of ${curveName} (one seed, ${last.step} steps${perStep}) ` +
    `reached mIoU ${
      curve.map((x) => `${x.mIoU.toFixed(2)} at step ${x.step}`).join(", ")
    }; its plateau — the ` +
    `first evaluation within ${p.tolerance} mIoU of its best (${
      p.best.mIoU.toFixed(2)
    } at step ${p.best.step}) — ` +
    `is step ${p.step}, so its runs train ${p.step} steps.` +
    (p.step === last.step
      ? " The plateau is the curve's last evaluation: the curve may still be rising, so a longer curve could " +
        "pick a larger budget."
      : "");
};
