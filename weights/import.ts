/**
 * Importing pretrained weights: a safetensors file in a foreign layout (e.g. torchvision's state dict)
 * → kappa parameter values, by a name table (`name_table.ts`).
 *
 * The model says what it needs: the caller passes the parameters to fill (path → shape, paths relative
 * to the model scope, e.g. `backbone.stem.conv.weight`), read off its graph. Every one of them must come
 * from the file, every tensor of the file must be used (or its module listed as `unused`), and every
 * shape must fit; otherwise one `WeightsError` lists all problems, one line per key, with both shapes for
 * a mis-shaped one. BatchNorm is folded into the convolution before it; linear weights are transposed to
 * kappa's [in, out].
 */
import { Data, Effect } from "effect";
import { readFile } from "node:fs/promises";
import { decodeSafetensors, type Tensor } from "../io/safetensors.ts";
import { foldBatchNorm } from "./fold_batch_norm.ts";
import { type LayerRule, type NameTable, PARAMETERS_OF, ruleFor } from "./name_table.ts";

/** A weights file cannot be read, is not safetensors, or does not fit the model. */
export class WeightsError extends Data.TaggedError("WeightsError")<{
  readonly file: string;
  readonly message: string;
  /** One line per problem key (empty when the file itself is unreadable). */
  readonly problems: readonly string[];
}> {}

/** A parameter's initial value, ready for `value("float32", data, shape)`. */
export interface ParameterValue {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export interface ImportOptions {
  /**
   * Source module prefixes present in the file that the model deliberately leaves unused, e.g.
   * `["classifier."]` for a backbone without the ImageNet classifier. Their tensors are not unexpected.
   */
  readonly unused?: readonly string[];
}

const BATCH_NORM_STATISTICS = ["weight", "bias", "running_mean", "running_var"] as const;
/** A counter PyTorch keeps in every BatchNorm; read if present, never needed. */
const BATCH_NORM_COUNTER = "num_batches_tracked";

const formatShape = (shape: readonly number[]) => `[${shape.join(",")}]`;

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0];

/** The whole file as safetensors tensors; a missing, unreadable or malformed file is one clear error. */
export const readSafetensorsFile = (
  file: string,
): Effect.Effect<Readonly<Record<string, Tensor>>, WeightsError> =>
  Effect.gen(function* () {
    const bytes = yield* Effect.tryPromise({
      try: () => readFile(file),
      catch: (e) =>
        new WeightsError({
          file,
          problems: [],
          message: (e as { code?: string }).code === "ENOENT"
            ? `${file}: weights file does not exist`
            : `${file}: cannot read weights file (${errorText(e)})`,
        }),
    });
    const decoded = yield* decodeSafetensors(
      new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length),
      file,
    )
      .pipe(Effect.mapError((e) =>
        new WeightsError({
          file,
          problems: [],
          message: `${file}: not a valid safetensors file (${
            e.message.startsWith(`${file}: `) ? e.message.slice(file.length + 2) : e.message
          })`,
        })
      ));
    return decoded.tensors;
  });

/** What one rule needs from the file: source key → the shape it must have and the kappa parameter it feeds. */
interface Need {
  readonly key: string;
  readonly shape: readonly number[];
  readonly feeds: string;
}

const needsOf = (rule: LayerRule, weightShape: readonly number[]): Need[] => {
  const weight = `${rule.to}.weight`;
  if (rule.kind === "linear") {
    return [
      { key: `${rule.linear}.weight`, shape: [...weightShape].reverse(), feeds: weight },
      { key: `${rule.linear}.bias`, shape: [weightShape[1]], feeds: `${rule.to}.bias` },
    ];
  }
  return [
    { key: `${rule.conv}.weight`, shape: weightShape, feeds: weight },
    ...BATCH_NORM_STATISTICS.map((s) => ({
      key: `${rule.batchNorm}.${s}`,
      shape: [weightShape[0]],
      feeds: `${rule.to}.bias`,
    })),
  ];
};

const asFloat32 = (t: Tensor): Float32Array =>
  t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as Float64Array);

/** The parameter values a rule produces from checked source tensors. */
const valuesOf = (
  rule: LayerRule,
  source: Readonly<Record<string, Tensor>>,
  shapes: ReadonlyMap<string, readonly number[]>,
): [string, ParameterValue][] => {
  const weightShape = shapes.get(`${rule.to}.weight`)!;
  const biasShape = shapes.get(`${rule.to}.bias`)!;
  if (rule.kind === "linear") {
    const [inputs, outputs] = weightShape;
    const w = asFloat32(source[`${rule.linear}.weight`]);
    const transposed = new Float32Array(inputs * outputs);
    for (let o = 0; o < outputs; o++) {
      for (let i = 0; i < inputs; i++) transposed[i * outputs + o] = w[o * inputs + i];
    }
    return [
      [`${rule.to}.weight`, { shape: weightShape, data: transposed }],
      [`${rule.to}.bias`, { shape: biasShape, data: asFloat32(source[`${rule.linear}.bias`]).slice() }],
    ];
  }
  const bn = (s: string) => asFloat32(source[`${rule.batchNorm}.${s}`]);
  const folded = foldBatchNorm(asFloat32(source[`${rule.conv}.weight`]), {
    gamma: bn("weight"),
    beta: bn("bias"),
    mean: bn("running_mean"),
    variance: bn("running_var"),
  });
  return [
    [`${rule.to}.weight`, { shape: weightShape, data: folded.weight }],
    [`${rule.to}.bias`, { shape: biasShape, data: folded.bias }],
  ];
};

const layerOf = (path: string) => path.slice(0, path.lastIndexOf("."));

/**
 * Reads `file` and maps it through `table` onto the parameters `expected` (path → shape, relative to
 * the model scope). Strict: fails with every missing, unexpected and mis-shaped key at once.
 *
 * @example
 *   const values = yield* importWeights("../shared/weights/mobilenet_v2_1.0_224.safetensors",
 *     MOBILENET_V2_TORCHVISION, parameterShapes, { unused: ["classifier."] });
 */
export const importWeights = (
  file: string,
  table: NameTable,
  expected: ReadonlyMap<string, readonly number[]>,
  { unused = [] }: ImportOptions = {},
): Effect.Effect<Map<string, ParameterValue>, WeightsError> =>
  Effect.gen(function* () {
    const source = yield* readSafetensorsFile(file);
    const problems: string[] = [];
    const used = new Set<string>();
    const rules: LayerRule[] = [];
    const layers = [...new Set([...expected.keys()].map(layerOf))];
    for (const layer of layers) {
      const rule = ruleFor(table, layer);
      const params = [...expected.keys()].filter((p) => layerOf(p) === layer).map((p) =>
        p.slice(layer.length + 1)
      );
      const produced = rule ? PARAMETERS_OF[rule.kind] : [];
      for (const p of params.filter((p) => !produced.includes(p))) {
        problems.push(
          `${layer}.${p}: the model has this parameter but no rule of the ${table.name} table fills it`,
        );
      }
      for (const p of produced.filter((p) => !params.includes(p))) {
        problems.push(`${layer}.${p}: the ${table.name} table fills it but the model has no such parameter`);
      }
      if (!rule || !produced.every((p) => params.includes(p))) continue;
      const bias = expected.get(`${layer}.bias`)!, weight = expected.get(`${layer}.weight`)!;
      const out = rule.kind === "linear" ? weight[1] : weight[0];
      if (bias.reduce((a, b) => a * b, 1) !== out) {
        problems.push(`${layer}.bias: the model's shape ${formatShape(bias)} does not hold ${out} channels`);
        continue;
      }
      rules.push(rule);
      let fits = true;
      for (const need of needsOf(rule, weight)) {
        const t = source[need.key];
        if (!t) {
          problems.push(`${need.key}: missing (${need.feeds} ${formatShape(need.shape)} needs it)`);
          fits = false;
          continue;
        }
        used.add(need.key);
        if (t.dtype !== "F32" && t.dtype !== "F64") {
          problems.push(`${need.key}: dtype ${t.dtype} in the file, a float is needed for ${need.feeds}`);
          fits = false;
        } else if (formatShape(t.shape) !== formatShape(need.shape)) {
          problems.push(
            `${need.key}: shape ${formatShape(t.shape)} in the file, ${
              formatShape(need.shape)
            } expected for ${need.feeds}`,
          );
          fits = false;
        }
      }
      if (rule.kind === "convBatchNorm") used.add(`${rule.batchNorm}.${BATCH_NORM_COUNTER}`);
      if (!fits) rules.pop();
    }
    for (const key of Object.keys(source)) {
      if (used.has(key) || unused.some((prefix) => key.startsWith(prefix))) continue;
      problems.push(
        `${key}: unexpected ${formatShape(source[key].shape)} (no parameter of the model takes it)`,
      );
    }
    if (problems.length > 0) {
      return yield* new WeightsError({
        file,
        problems,
        message: `${file}: does not fit the model as ${table.name} (${problems.length} problem${
          problems.length === 1 ? "" : "s"
        }):\n${problems.map((p) => `  ${p}`).join("\n")}`,
      });
    }
    return new Map(rules.flatMap((rule) => valuesOf(rule, source, expected)));
  });
