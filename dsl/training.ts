/**
 * Training and evaluation settings of an experiment: optimizer, learning-rate schedule, parameter
 * groups, step counts and how often to log, evaluate and checkpoint.
 */
import { Schema } from "effect";

const Positive = Schema.Int.check(Schema.isGreaterThan(0));

/**
 * The most training steps a run may have (`train.steps`, and the `--steps` / `--extend-steps` flags): ten
 * million, years of a CPU run; a larger value is a typo (`1e12`), not a plan.
 */
export const MAX_STEPS = 10_000_000;
/** Seeds are hashed as unsigned 32-bit words (core/random.ts), so they run from 0 to 2³² − 1. */
export const MAX_SEED = 2 ** 32 - 1;
const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0));
const NonNegative = Schema.Number.check(Schema.isGreaterThanOrEqualTo(0));
const Size = Schema.Tuple([Positive, Positive]);

export const SGD = Schema.TaggedStruct("SGD", {
  lr: Schema.Number.check(Schema.isGreaterThan(0)),
  momentum: NonNegative,
  weightDecay: NonNegative,
  nesterov: Schema.Boolean,
});
export const AdamW = Schema.TaggedStruct("AdamW", {
  lr: Schema.Number.check(Schema.isGreaterThan(0)),
  beta1: NonNegative,
  beta2: NonNegative,
  epsilon: Schema.Number.check(Schema.isGreaterThan(0)),
  weightDecay: NonNegative,
});
export const OptimizerSpec = Schema.Union([SGD, AdamW]);
export type OptimizerSpec = typeof OptimizerSpec.Type;

/** mmsegmentation's poly policy: lr = (lr₀ − min)(1 − t/T)^power + min, after an optional linear warmup. */
export const Poly = Schema.TaggedStruct("Poly", {
  power: NonNegative,
  minLr: NonNegative,
  warmupSteps: NonNegativeInt,
});
export const Cosine = Schema.TaggedStruct("Cosine", { minLr: NonNegative, warmupSteps: NonNegativeInt });
export const Constant = Schema.TaggedStruct("Constant", {});
export const Schedule = Schema.Union([Poly, Cosine, Constant]);
export type Schedule = typeof Schedule.Type;

/** Learning-rate and weight-decay multipliers for variables whose name matches `pattern` (a regex). */
export const ParamGroup = Schema.Struct({ pattern: Schema.String, lrMult: NonNegative, wdMult: NonNegative });

/** The most augmentation draws a frozen backbone's feature cache may hold per training image. */
export const MAX_FEATURE_DRAWS = 1000;

/**
 * A frozen backbone (linear-probe / frozen-feature protocol): the backbone's parameters get no gradient
 * and no update (its backward is not built) and it runs in evaluation mode (no dropout); only the head
 * trains. With `draws` N ≥ 1 the backbone's outputs for every training image under N seeded
 * augmentation draws are computed once, stored in a float16 feature cache shared by every run and seed
 * with the same backbone, weights, pipeline and data, and each step reads them instead of running the
 * backbone (a run's seed picks which draw each sample of each step uses). `draws: 0` keeps no cache: the
 * frozen backbone runs on every step's fresh augmentation.
 */
export const FrozenBackbone = Schema.Struct({
  draws: NonNegativeInt.check(Schema.isLessThanOrEqualTo(MAX_FEATURE_DRAWS)),
});
export type FrozenBackbone = typeof FrozenBackbone.Type;

export const TrainConfig = Schema.Struct({
  steps: Positive.check(Schema.isLessThanOrEqualTo(MAX_STEPS)),
  batchSize: Positive,
  optimizer: OptimizerSpec,
  schedule: Schedule,
  paramGroups: Schema.Array(ParamGroup),
  clipGradNorm: Schema.NullOr(Schema.Number.check(Schema.isGreaterThan(0))),
  seed: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(MAX_SEED)),
  logEvery: Positive,
  /** Validate every this many steps (0: only at the end). */
  evalEvery: NonNegativeInt,
  checkpointEvery: Positive,
  keepCheckpoints: Positive,
  /** Train the head on a frozen backbone (absent: the whole model trains, as before). */
  frozenBackbone: Schema.optionalKey(FrozenBackbone),
});
export type TrainConfig = typeof TrainConfig.Type;

export const EvalConfig = Schema.Struct({
  /** "whole": one pass over the (padded) image; "slide": overlapping crops averaged. */
  mode: Schema.Literals(["whole", "slide"]),
  crop: Schema.NullOr(Size),
  stride: Schema.NullOr(Size),
  /** How many example predictions the report shows. */
  examples: NonNegativeInt,
  /**
   * LarvSeg's novel classes (names of the class table): mIoU is also reported over them and over the
   * other (base) classes. Names are checked against the dataset when it is opened.
   */
  novel: Schema.optionalKey(Schema.Array(Schema.String)),
  /**
   * κ of ξ's recall@κ (eval/multilabel_ap.ts): the share of an image's ground-truth classes among its
   * top-κ scores, averaged over images. Absent: the model's top-κ when it selects one (`topK(κ)`), else
   * recall@κ is not reported. Optional so that specs without it keep their hash.
   */
  recallAt: Schema.optionalKey(Positive),
});
export type EvalConfig = typeof EvalConfig.Type;

type Opt<T> = Partial<T>;

export const sgdSpec = (o: Opt<Omit<typeof SGD.Type, "_tag">> = {}): OptimizerSpec => ({
  _tag: "SGD",
  lr: 1e-3,
  momentum: 0.9,
  weightDecay: 0,
  nesterov: false,
  ...o,
});
export const adamWSpec = (o: Opt<Omit<typeof AdamW.Type, "_tag">> = {}): OptimizerSpec => ({
  _tag: "AdamW",
  lr: 1e-3,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-8,
  weightDecay: 0.01,
  ...o,
});
export const poly = (o: Opt<Omit<typeof Poly.Type, "_tag">> = {}): Schedule => ({
  _tag: "Poly",
  power: 0.9,
  minLr: 1e-5,
  warmupSteps: 0,
  ...o,
});
export const cosine = (o: Opt<Omit<typeof Cosine.Type, "_tag">> = {}): Schedule => ({
  _tag: "Cosine",
  minLr: 0,
  warmupSteps: 0,
  ...o,
});

/** Segmenter's recipe (SGD lr 1e-3, momentum 0.9, poly 0.9 to 1e-5), no decay on norms and embeddings. */
export const trainConfig = (o: Opt<TrainConfig> & Pick<TrainConfig, "steps">): TrainConfig => ({
  batchSize: 8,
  optimizer: sgdSpec(),
  schedule: poly(),
  paramGroups: [{ pattern: "(posEmbed|classEmbed|norm[0-9]*\\.|\\.bias$)", lrMult: 1, wdMult: 0 }],
  clipGradNorm: null,
  seed: 0,
  logEvery: 10,
  evalEvery: 0,
  checkpointEvery: 500,
  keepCheckpoints: 2,
  ...o,
});

/** A frozen backbone with `draws` cached augmentation draws per training image (default 8; 0: no cache). */
export const frozenBackbone = (o: Opt<FrozenBackbone> = {}): FrozenBackbone => ({ draws: 8, ...o });

export const evalConfig = (o: Opt<EvalConfig> = {}): EvalConfig => ({
  mode: "whole",
  crop: null,
  stride: null,
  examples: 4,
  ...o,
});

/** The learning rate at 1-based `step` of `total`. */
export const learningRate = (schedule: Schedule, base: number, step: number, total: number): number => {
  const warm = schedule._tag === "Constant" ? 0 : schedule.warmupSteps;
  if (step <= warm) return (base * step) / warm;
  const t = Math.min((step - 1 - warm) / Math.max(total - warm, 1), 1);
  switch (schedule._tag) {
    case "Constant":
      return base;
    case "Poly":
      return (base - schedule.minLr) * (1 - t) ** schedule.power + schedule.minLr;
    case "Cosine":
      return schedule.minLr + ((base - schedule.minLr) * (1 + Math.cos(Math.PI * t))) / 2;
  }
};
