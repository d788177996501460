/**
 * Step budgets from learning curves: a grid trains one seed of an experiment with a validation every N
 * steps (`grid_runs.ts` `curveRun`), and its runs train as many steps as the curve took to reach its
 * plateau. The rule, stated in every section that uses it: the plateau is the first evaluation within
 * `tolerance` mIoU (1 by default) of the curve's best evaluation — later evaluations add at most that much.
 * A multi-label-only model (ξ alone: no pixel head, no mIoU) is read on its mAP instead, in the same points.
 */
import { type CurvePoint, GOAL_FIGURES } from "./grid_runs.ts";

export const DEFAULT_TOLERANCE = 1;

export interface Plateau {
  /** The step of the first evaluation within `tolerance` of the best: the budget. */
  readonly step: number;
  readonly best: CurvePoint;
  readonly tolerance: number;
  /** The figure the rule read: mIoU, or mAP for a multi-label-only model. */
  readonly metric: "mIoU" | "mAP";
}

/** The figure a curve's plateau is read on: mIoU where every evaluation has one, else mAP. */
export const curveMetric = (curve: readonly CurvePoint[]): "mIoU" | "mAP" =>
  curve.every((p) => Number.isFinite(p.mIoU)) || !curve.every((p) => p.mAP !== undefined) ? "mIoU" : "mAP";

const figure = (p: CurvePoint, metric: "mIoU" | "mAP") => (metric === "mIoU" ? p.mIoU : p.mAP!);

/** The curve's plateau, or undefined for a curve without evaluations. */
export const plateau = (curve: readonly CurvePoint[], tolerance = DEFAULT_TOLERANCE): Plateau | undefined => {
  if (curve.length === 0) return undefined;
  const metric = curveMetric(curve);
  const best = curve.reduce((a, b) => (figure(b, metric) > figure(a, metric) ? b : a));
  return {
    step: curve.find((p) => figure(best, metric) - figure(p, metric) <= tolerance)!.step,
    best,
    tolerance,
    metric,
  };
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
  const reached = curve.map((x) => `${figure(x, p.metric).toFixed(2)} at step ${x.step}`).join(", ");
  return `Step budget ${p.step}: the learning curve of ${curveName} (one seed, ${last.step} steps${perStep}) ` +
    `reached ${p.metric} ${reached}; its plateau — the first evaluation within ${p.tolerance} ${p.metric} of ` +
    `its best (${
      figure(p.best, p.metric).toFixed(2)
    } at step ${p.best.step}) — is step ${p.step}, so its runs ` +
    `train ${p.step} steps.` +
    (p.step === last.step
      ? " The plateau is the curve's last evaluation: the curve may still be rising, so a longer curve could " +
        "pick a larger budget."
      : "") +
    alongTheCurve(curve, p.metric);
};

/**
 * The curve's other figures at the same evaluations (the ones a grid's goals name: ξ's mAP, PQ and its
 * things / stuff parts, the novel classes' mIoU), or "" when its evaluations have none.
 */
export const alongTheCurve = (curve: readonly CurvePoint[], read: "mIoU" | "mAP" = "mIoU"): string => {
  const series = [
    ...GOAL_FIGURES.filter((f) => f !== read).map((f) => ({ name: f, values: curve.map((x) => x[f]) })),
    { name: "novel mIoU", values: curve.map((x) => x.novel) },
  ].filter((s) => s.values.every((v) => v !== undefined));
  return series.length === 0
    ? ""
    : ` At the same evaluations: ${
      series.map((s) => `${s.name} ${s.values.map((v) => v!.toFixed(2)).join(", ")}`).join("; ")
    }.`;
};
