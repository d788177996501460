/**
 * What changed between two experiment specs, as one `path: old → new` entry per differing field, so a
 * refused resume can say `train.steps: 700 → 900` instead of "the experiment changed".
 */

const show = (v: unknown): string => (v === undefined ? "(absent)" : JSON.stringify(v));

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Differing leaves of two JSON values, by dotted path (array items as `[i]`); arrays of other length whole. */
export const specDiff = (before: unknown, after: unknown, path = ""): string[] => {
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => specDiff(before[k], after[k], path ? `${path}.${k}` : k));
  }
  if (Array.isArray(before) && Array.isArray(after) && before.length === after.length) {
    return before.flatMap((v, i) => specDiff(v, after[i], `${path}[${i}]`));
  }
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  return [`${path || "(spec)"}: ${show(before)} → ${show(after)}`];
};
