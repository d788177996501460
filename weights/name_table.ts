/**
 * Name tables: how one source layout of a pretrained architecture maps onto kappa's parameter paths.
 *
 * A table is data: one rule per kappa layer kind, naming the source modules it reads, with `{i}`
 * placeholders (a decimal number) that bind the same way on both sides. Rules are tried in order and the
 * first whose `to` matches a layer wins, so a special case (e.g. a block laid out differently) is listed
 * before the general rule. A second architecture (or a second source layout) is a second table.
 */

/** One kappa layer and the source modules its parameters come from. */
export type LayerRule =
  /**
   * A convolution followed by an inference-mode BatchNorm, folded into one convolution with a bias:
   * kappa `<to>.weight` [out, in/group, kh, kw] and `<to>.bias` [out] from source `<conv>.weight` and
   * `<batchNorm>.{weight,bias,running_mean,running_var}` (`num_batches_tracked` is read if present,
   * never needed).
   */
  | { readonly kind: "convBatchNorm"; readonly to: string; readonly conv: string; readonly batchNorm: string }
  /**
   * A linear layer: kappa `<to>.weight` [in, out] (the transpose of PyTorch's [out, in]) and
   * `<to>.bias` [out] from source `<linear>.weight` and `<linear>.bias`.
   */
  | { readonly kind: "linear"; readonly to: string; readonly linear: string };

export interface NameTable {
  /** What the table reads, for error messages: "torchvision MobileNetV2". */
  readonly name: string;
  readonly rules: readonly LayerRule[];
}

/** The kappa parameter names (last path component) each rule kind produces. */
export const PARAMETERS_OF: Record<LayerRule["kind"], readonly string[]> = {
  convBatchNorm: ["weight", "bias"],
  linear: ["weight", "bias"],
};

const escape = (s: string) => s.replace(/[.*+?^$()|[\]\\]/g, "\\$&");

/** The placeholder values under which `template` spells `path`, or undefined if it does not. */
export const matchTemplate = (template: string, path: string): Record<string, string> | undefined => {
  const names: string[] = [];
  const pattern = template.split(/(\{\w+\})/).map((part) => {
    const placeholder = /^\{(\w+)\}$/.exec(part);
    if (!placeholder) return escape(part);
    names.push(placeholder[1]);
    return "(\\d+)";
  }).join("");
  const m = new RegExp(`^${pattern}$`).exec(path);
  if (!m) return undefined;
  const bindings: Record<string, string> = {};
  for (let k = 0; k < names.length; k++) {
    if (bindings[names[k]] !== undefined && bindings[names[k]] !== m[k + 1]) return undefined;
    bindings[names[k]] = m[k + 1];
  }
  return bindings;
};

/** `template` with its placeholders replaced by `bindings`. */
export const fillTemplate = (template: string, bindings: Readonly<Record<string, string>>): string =>
  template.replace(/\{(\w+)\}/g, (_, name: string) => bindings[name]);

/** The first rule of `table` whose `to` spells `layer`, with its source modules filled in. */
export const ruleFor = (table: NameTable, layer: string): LayerRule | undefined => {
  for (const rule of table.rules) {
    const bindings = matchTemplate(rule.to, layer);
    if (!bindings) continue;
    return rule.kind === "convBatchNorm"
      ? {
        kind: rule.kind,
        to: layer,
        conv: fillTemplate(rule.conv, bindings),
        batchNorm: fillTemplate(rule.batchNorm, bindings),
      }
      : { kind: rule.kind, to: layer, linear: fillTemplate(rule.linear, bindings) };
  }
  return undefined;
};
