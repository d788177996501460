/**
 * `deno task grid ranker-quality <run-dir>... [--alphas A,B,…] [--limit N] [--threads T] [--report-only]`:
 * how good must ξ's ranking be before RankSeg's top-κ selection pays?
 *
 * On each trained RankSeg run (a top-κ model with ξ and a τ without per-rank parameters — the +MT+LS row —
 * so that the same weights also evaluate at κ = K), the selection's scores are moved from ξ's towards the
 * ground truth: ξ's probabilities with the presence of each class added at weight 2α (layers/selection.ts
 * `probeScores`; α = 0 is ξ, α = 1 ranks exactly as the oracle does). At every α the run is evaluated with
 * +LS at its own κ (mIoU, and the mixed ranking's mAP and recall@κ), beside two controls on the same weights:
 * κ = K (every class selected, so no present class can be dropped) and the ground-truth oracle (present
 * classes only, absent slots masked). The crossover is where the +LS curve rises above the κ = K control for
 * good (`crossover`), located on α, on mAP and on recall@κ; the part of RESULTS.md this writes has the table,
 * a chart per run (results/ranker-quality-<run>.svg) and findings computed from them.
 *
 * `--ranker DIR[,DIR…]` adds one more evaluation per run: +LS at its κ on the same weights, ranked by the ξ
 * of a separately trained multi-label run on the run's dataset (the first such DIR; e.g. a ξ trained alone for
 * longer on the frozen backbone) in place of the model's own ξ — a real ranker where α's rankings are
 * mixtures with the ground truth.
 *
 * Each evaluation is kept in `<run>/ranker-quality/` (with the checkpoint's parameter digest), so a second
 * call evaluates only what is missing; `--report-only` evaluates nothing. It trains nothing: the runs come
 * from a grid (e.g. `grid ablation --grid pretrained --only ccp-mt-ls.ts`).
 */
import { Data, Effect } from "effect";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import {
  bindKind,
  type Dataset,
  evaluate,
  type Experiment,
  type ExperimentOf,
  independent,
  kindPart,
  type LoadedRun,
  loadRanker,
  loadRun,
  openDataset,
  parametersDigest,
  type Segmenter,
  type Value,
} from "../mod.ts";
import { lineChart } from "./line_chart.ts";
import { runOptions } from "./grid_runs.ts";
import { flag } from "../figures/flags.ts";
import { formatGenerated, replaceSection, table } from "../figures/markdown.ts";
import { mean, std } from "../figures/stats.ts";

/**
 * The mixing weights, log-spaced: ξ's probabilities for absent classes are small (an ASL-trained ξ gives most
 * classes a few percent), so a small weight already lifts the present ones: on the ccp +MT+LS run the mAP went
 * from 23.3 at α = 0 to 88.6 at α = 0.02. Every present class is above every absent one by α = ½.
 */
export const ALPHAS: readonly number[] = [0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.2, 1];

export const TITLE = "RankSeg: how good must ξ rank before selection pays? (ranker-quality sweep)";

/** A run the sweep cannot probe, or a bad `--alphas`; the message is the one line the CLI prints. */
export class RankerQualityError extends Data.TaggedError("RankerQualityError")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason;
  }
}

/** `--alphas 0,0.1,1` as numbers, or why not (each in [0, 1]). */
export const parseAlphas = (text: string): readonly number[] | string => {
  const alphas = text.split(",").map((a) => a.trim());
  const bad = alphas.find((a) => !/^\d*\.?\d+$/.test(a) || Number(a) > 1);
  return bad === undefined
    ? alphas.map(Number)
    : `--alphas: ${JSON.stringify(bad)} is not a number in [0, 1]`;
};

/** One evaluation of the sweep (percent). */
export interface ProbePoint {
  readonly alpha: number;
  readonly kappa: number;
  readonly mIoU: number;
  readonly mAP: number | null;
  readonly recall: number | null;
  readonly images: number;
}

/** One run's sweep: +LS at its κ for every α, the κ = K control, the oracle. */
export interface Sweep {
  readonly run: string;
  readonly dataset: string;
  readonly classes: number;
  readonly kappa: number;
  readonly step: number;
  /** The run's experiment and seed (what trained it). */
  readonly experiment?: string;
  readonly seed?: number;
  readonly points: readonly ProbePoint[];
  /** κ = K on the same weights at α = 0 and α = 1 (the ranking cannot drop a class there). */
  readonly control: readonly ProbePoint[];
  readonly oracle?: ProbePoint;
  /**
   * `--ranker DIR`: +LS at κ on the same weights, ranked by a separately trained ξ (a multi-label run)
   * instead of the model's own; `point.mAP` is that ranking's.
   */
  readonly ranked?: { readonly ranker: string; readonly step: number; readonly point: ProbePoint };
}

/**
 * Where a curve rises above a level for good: the smallest x from which every point of the curve (sorted by
 * x) is at or above `level`, interpolated linearly between the last point below it and the next one.
 * `Already`: the first point is above; `Never`: the last point is below (`gap`: the level minus the curve's
 * best value).
 */
export type Crossover =
  | { readonly _tag: "Already"; readonly x: number }
  | { readonly _tag: "At"; readonly x: number }
  | { readonly _tag: "Never"; readonly gap: number };

export const crossover = (
  points: readonly { readonly x: number; readonly y: number }[],
  level: number,
): Crossover => {
  const sorted = [...points].sort((a, b) => a.x - b.x);
  if (sorted.length === 0) return { _tag: "Never", gap: Infinity };
  let last = -1;
  sorted.forEach((p, i) => {
    if (p.y < level) last = i;
  });
  if (last < 0) return { _tag: "Already", x: sorted[0].x };
  if (last === sorted.length - 1) return { _tag: "Never", gap: level - Math.max(...sorted.map((p) => p.y)) };
  const [a, b] = [sorted[last], sorted[last + 1]];
  return { _tag: "At", x: a.x + ((level - a.y) * (b.x - a.x)) / (b.y - a.y) };
};

/** The κ = K control's level: the mean over the α it was evaluated at. */
export const controlLevel = (s: Sweep): number => mean(s.control.map((p) => p.mIoU));

/** The crossovers of one sweep on α, on the mixed ranking's mAP and on its recall@κ. */
export const sweepCrossovers = (s: Sweep) => {
  const level = controlLevel(s);
  const on = (x: (p: ProbePoint) => number | null) =>
    s.points.some((p) => x(p) === null)
      ? undefined
      : crossover(s.points.map((p) => ({ x: x(p)!, y: p.mIoU })), level);
  return { level, alpha: on((p) => p.alpha), mAP: on((p) => p.mAP), recall: on((p) => p.recall) };
};

const signed = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(2)}`;
const fmt = (x: number | null | undefined, digits = 2) =>
  x === null || x === undefined || !Number.isFinite(x) ? "—" : x.toFixed(digits);

const describeCrossover = (c: Crossover | undefined, what: string) =>
  c === undefined
    ? `${what} n/a`
    : c._tag === "At"
    ? `${what} ≈ ${fmt(c.x, what === "α" ? 3 : 1)}`
    : c._tag === "Already"
    ? `already at ξ's ${what} (${fmt(c.x, what === "α" ? 3 : 1)})`
    : "never";

/** What the sweeps show, computed: one paragraph per run, then the spread over runs when several. */
export const rankerFindings = (sweeps: readonly Sweep[]): string[] => {
  const out = ["### Findings (computed from the evaluations above)", ""];
  for (const s of sweeps) {
    const c = sweepCrossovers(s);
    const at0 = s.points.find((p) => p.alpha === 0), at1 = s.points.find((p) => p.alpha === 1);
    const lines: string[] = [];
    if (at0) {
      const delta = at0.mIoU - c.level;
      lines.push(
        `At ξ's own ranking (α = 0: mAP ${fmt(at0.mAP)}, recall@${s.kappa} ${fmt(at0.recall)}) +LS at κ = ` +
          `${s.kappa} scores ${fmt(at0.mIoU)} mIoU against ${
            fmt(c.level)
          } at κ = K = ${s.classes} on the same ` +
          `weights: ${delta >= 0 ? "+" : ""}${delta.toFixed(2)} (selection ${
            delta >= 0 ? "pays" : "costs"
          }).`,
      );
    }
    if (s.ranked) {
      const delta = s.ranked.point.mIoU - c.level;
      lines.push(
        `Ranked by the separately trained ξ (mAP ${fmt(s.ranked.point.mAP)}, recall@${s.kappa} ${
          fmt(s.ranked.point.recall)
        }) +LS scores ${fmt(s.ranked.point.mIoU)}: ${signed(delta)} against κ = K (selection ${
          delta >= 0 ? "pays" : "costs"
        }).`,
      );
    }
    if (c.alpha?._tag === "Never") {
      lines.push(
        `Selection never pays on this run: even at the best ranking swept it stays ${
          c.alpha.gap.toFixed(2)
        } ` +
          "mIoU below the κ = K control, so the head itself, not ξ, is what +LS loses on.",
      );
    } else if (c.alpha?._tag === "Already") {
      lines.push("Selection pays from ξ's own ranking on: no better ranker is needed on this run.");
    } else if (c.alpha) {
      lines.push(
        `Selection starts to pay (and keeps paying for every better ranking swept) at ${
          describeCrossover(c.mAP, "mAP")
        }, recall@${s.kappa} ${describeCrossover(c.recall, "recall").replace(/^recall /, "")}, ` +
          `${describeCrossover(c.alpha, "α")}.`,
      );
    }
    if (at1) {
      const delta = at1.mIoU - c.level;
      lines.push(
        `At the oracle's ranking (α = 1: mAP ${fmt(at1.mAP)}, recall@${s.kappa} ${fmt(at1.recall)}) +LS ` +
          `scores ${fmt(at1.mIoU)} (${delta >= 0 ? "+" : ""}${delta.toFixed(2)} over κ = K)` +
          (s.oracle
            ? `; the oracle mode, which also masks the absent classes left in the κ slots, scores ${
              fmt(s.oracle.mIoU)
            } (${s.oracle.mIoU - at1.mIoU >= 0 ? "+" : ""}${
              (s.oracle.mIoU - at1.mIoU).toFixed(2)
            } for the masking alone).`
            : "."),
      );
    }
    // Where the ranking's mAP is already (nearly) complete and +LS still gains: mAP ranks each class across
    // images, while the selection reads each image's own ranking (its recall@κ).
    const saturated = [...s.points].sort((a, b) => a.alpha - b.alpha).find((p) => (p.mAP ?? 0) >= 99);
    const top = at1 ?? s.points.reduce((a, b) => (b.mIoU > a.mIoU ? b : a), s.points[0]);
    if (saturated && top && top.mIoU - saturated.mIoU > 0.1) {
      lines.push(
        `The mixed ranking's mAP is ${fmt(saturated.mAP)} already at α = ${saturated.alpha}, yet +LS gains ` +
          `${
            (top.mIoU - saturated.mIoU).toFixed(2)
          } mIoU after it: mAP ranks each class across images, while ` +
          "the selection reads each image's own ranking, so recall@κ is the axis that predicts it.",
      );
    }
    if (s.control.length > 1) {
      const spread = Math.max(...s.control.map((p) => p.mIoU)) - Math.min(...s.control.map((p) => p.mIoU));
      lines.push(
        `The κ = K control at α = ${s.control.map((p) => p.alpha).join(" and ")}: ${
          s.control.map((p) => fmt(p.mIoU)).join(" and ")
        } (${
          spread < 0.005
            ? "the same: with every class selected the ranking changes nothing"
            : "the rank order moves it"
        }).`,
      );
    }
    out.push(`- \`${s.run}\` (step ${s.step}): ${lines.join(" ")}`);
  }
  // The spread over the runs of each dataset (a dataset's runs are its seeds; datasets are not pooled).
  for (const dataset of [...new Set(sweeps.map((s) => s.dataset))]) {
    const runs = sweeps.filter((s) => s.dataset === dataset);
    if (runs.length < 2) continue;
    const at = (pick: (c: ReturnType<typeof sweepCrossovers>) => Crossover | undefined) =>
      runs.map((s) => pick(sweepCrossovers(s))).filter((c): c is Crossover & { x: number } =>
        c !== undefined && c._tag !== "Never"
      ).map((c) => c.x);
    const maps = at((c) => c.mAP), recalls = at((c) => c.recall);
    const deltas = runs.map((s) => (s.points.find((p) => p.alpha === 0)?.mIoU ?? NaN) - controlLevel(s));
    const ranked = runs.filter((s) => s.ranked);
    const rankedDeltas = ranked.map((s) => s.ranked!.point.mIoU - controlLevel(s));
    const rankedMAPs = ranked.map((s) => s.ranked!.point.mAP ?? NaN);
    const spread = (xs: readonly number[], digits = 2) =>
      `${mean(xs).toFixed(digits)} ± ${std(xs).toFixed(digits)}`;
    out.push(
      `- Over the ${runs.length} ${dataset} runs: +LS − κ = K at ξ's own ranking ${
        spread(deltas)
      } mIoU; the ` +
        `crossover at mAP ${maps.length ? spread(maps, 1) : "— (none crossed)"}, recall@κ ${
          recalls.length ? spread(recalls, 1) : "—"
        } (${maps.length} of ${runs.length} runs cross)` +
        (ranked.length === 0
          ? "."
          : `; ranked by the separately trained ξ (mAP ${spread(rankedMAPs)}), +LS − κ = K ${
            spread(rankedDeltas)
          } mIoU (${ranked.length} runs).`),
    );
  }
  return out;
};

/** One run's part: its table and chart link; the chart's SVG. */
export const sweepSection = (s: Sweep, svg: string): { lines: string[]; chart: string } => {
  const c = sweepCrossovers(s);
  const lines = [
    `## ${s.dataset} (K = ${s.classes}, κ = ${s.kappa}): \`${s.run}\``,
    "",
    `${
      s.experiment === undefined ? "Step" : `Experiment \`${s.experiment}\`, seed ${s.seed}, step`
    } ${s.step}; ` +
    `${s.points[0]?.images ?? 0} ${s.dataset} validation images per evaluation. κ = K control ` +
    `(same weights, all ${s.classes} classes selected): ${fmt(c.level)} mIoU; oracle mode: ${
      fmt(s.oracle?.mIoU)
    }.`,
    "",
    table<ProbePoint>(
      [
        { header: "α", cell: (p) => String(p.alpha) },
        { header: "mAP (mixed ranking)", align: "right", cell: (p) => fmt(p.mAP) },
        { header: `recall@${s.kappa}`, align: "right", cell: (p) => fmt(p.recall) },
        { header: `+LS mIoU (κ = ${s.kappa})`, align: "right", cell: (p) => fmt(p.mIoU) },
        {
          header: "− κ = K",
          align: "right",
          cell: (p) => `${p.mIoU - c.level >= 0 ? "+" : ""}${fmt(p.mIoU - c.level)}`,
        },
      ],
      [...s.points].sort((a, b) => a.alpha - b.alpha),
      "plain",
    ),
    "",
    `Crossover (+LS above κ = K for every better ranking): ${
      describeCrossover(c.mAP, "mAP")
    }; recall@${s.kappa} ` +
    `${describeCrossover(c.recall, "recall").replace(/^recall /, "")}; ${describeCrossover(c.alpha, "α")}.`,
    "",
    ...(s.ranked
      ? [
        `Ranked by the separately trained ξ of \`${s.ranked.ranker}\` (step ${s.ranked.step}) in place of the ` +
        `run's own: mAP ${fmt(s.ranked.point.mAP)}, recall@${s.kappa} ${fmt(s.ranked.point.recall)}, +LS ` +
        `${fmt(s.ranked.point.mIoU)} mIoU (${signed(s.ranked.point.mIoU - c.level)} against κ = K).`,
        "",
      ]
      : []),
    `![+LS mIoU against the ranking's recall@κ (or mAP), ${s.dataset}](${svg})`,
    "",
  ];
  // The x axis: recall@κ where the evaluation reports it (what the selection reads, per image), else mAP,
  // else α.
  const axis = s.points.every((p) => p.recall !== null)
    ? { name: `recall@${s.kappa} of the mixed ranking (%)`, x: (p: ProbePoint) => p.recall!, c: c.recall }
    : s.points.every((p) => p.mAP !== null)
    ? { name: "mAP of the mixed ranking (%)", x: (p: ProbePoint) => p.mAP!, c: c.mAP }
    : { name: "α", x: (p: ProbePoint) => p.alpha, c: c.alpha };
  const chart = lineChart(
    `${s.dataset}: +LS (κ = ${s.kappa}) vs κ = K as the ranking improves`,
    axis.name,
    "mIoU (%)",
    [
      {
        label: `+LS, κ = ${s.kappa}`,
        color: "#4c78a8",
        points: s.points.map((p) => ({ x: axis.x(p), y: p.mIoU })),
      },
      { label: `κ = K = ${s.classes} (same weights)`, color: "#e45756", points: [], level: c.level },
      ...(s.oracle ? [{ label: "oracle mode", color: "#54a24b", points: [], level: s.oracle.mIoU }] : []),
    ],
    axis.c?._tag === "At" ? { x: axis.c.x, label: `crossover ≈ ${axis.c.x.toFixed(1)}` } : undefined,
  );
  return { lines, chart };
};

/** The RESULTS.md part: the method, then one section per run, then the findings. */
export const resultsPart = (
  sweeps: readonly Sweep[],
  command: string,
  date: string,
  svgs: readonly string[],
) => [
  `Produced by \`${command}\` on ${date}; this part is written by that command.`,
  "",
  "Method. On each trained run (RankSeg's +MT+LS row: ξ, top-κ selection, a shared τ, so the same weights " +
  "also evaluate at κ = K), the selection's scores are ξ's probabilities with each class's presence in the " +
  "image added at weight 2α, (σ(ξ) + 2α·present) / (1 + 2α): α = 0 is ξ's own ranking, α = 1 ranks exactly " +
  "as the ground-truth oracle does (present classes first, each group by ξ's score), and between them the " +
  "ranking's mAP and recall@κ rise towards 100. Only the ranking moves: the weights, the images and κ stay. " +
  "The control is the same weights at κ = K (every class selected, none can be dropped); the oracle mode also " +
  "masks the absent classes left in the κ slots. Selection pays where the +LS curve is above the control.",
  "",
  ...sweeps.flatMap((s, i) => sweepSection(s, svgs[i]).lines),
  ...rankerFindings(sweeps),
];

/** A cached evaluation, kept while the checkpoint's parameters are the same. */
interface Cached extends ProbePoint {
  readonly parameters: string;
  readonly oracle: boolean;
  /** `--limit` it was evaluated with ("all": the whole split; absent in files written before it). */
  readonly limit?: number | "all";
}

/**
 * Whether a kept evaluation was made with this `--limit` (a limited one does not stand in for the split;
 * files written before the field were whole-split evaluations). grid novel-classes keeps its diagnoses so too.
 */
export const sameLimit = (kept: { readonly limit?: number | "all" }, limit: number | undefined) =>
  (kept.limit ?? "all") === (limit ?? "all");

const pointFile = (dir: string, kappa: number, alpha: number | "oracle") =>
  join(dir, "ranker-quality", alpha === "oracle" ? `k${kappa}-oracle.json` : `k${kappa}-alpha${alpha}.json`);

/** Why a run's model cannot be swept, or undefined. */
export const sweepProblem = (e: Experiment): string | undefined => {
  const m = e.model;
  if (m._tag !== "Segmenter") return `its model is ${m._tag}, not a RankSeg segmenter`;
  if (m.select._tag !== "TopK") return `its selection is ${m.select._tag}, not top-κ (the +MT+LS row is)`;
  if (!m.xi) return "it has no ξ to rank with";
  if (m.temperature._tag === "RankAdaptive" || m.temperature._tag === "RankLayerNorm") {
    return `its τ (${m.temperature._tag}) has one parameter per rank, so its weights cannot evaluate at κ = K ` +
      "(sweep the +MT+LS row, whose τ is shared)";
  }
  return undefined;
};

/** Sweeps one run (evaluating what its folder does not hold yet, unless `reportOnly`). */
export const sweepRun = (
  dir: string,
  alphas: readonly number[],
  opts: {
    readonly limit?: number;
    readonly reportOnly?: boolean;
    readonly print?: (l: string) => void;
    /**
     * Separately trained multi-label runs to rank with, in place of the model's own ξ: a run is ranked by the
     * first of them trained on its dataset (none: no such evaluation).
     */
    readonly rankers?: readonly string[];
  } = {},
) =>
  Effect.gen(function* () {
    const run = yield* loadRun(dir);
    const e = run.experiment;
    const problem = sweepProblem(e);
    if (problem) return yield* new RankerQualityError({ reason: `${dir}: ${problem}` });
    const model = e.model as Extract<Experiment["model"], { _tag: "Segmenter" }>;
    const kappa = (model.select as { k: number }).k, classes = model.classes;
    const all: Experiment = {
      ...e,
      model: { ...model, select: { ...model.select, k: classes } },
    } as Experiment;
    const parameters = parametersDigest(run.state);
    const split = e.data.dataset.testSplit;
    const dataset = yield* openDataset(e.data.dataset, split);
    const evaluate = (exp: Experiment, k: number, alpha: number | "oracle") =>
      Effect.gen(function* () {
        const file = pointFile(dir, k, alpha);
        if (existsSync(file)) {
          const cached = JSON.parse(readFileSync(file, "utf8")) as Cached;
          if (
            cached.parameters === parameters && sameLimit(cached, opts.limit)
          ) {
            return cached as ProbePoint;
          }
        }
        if (opts.reportOnly) return undefined;
        const bound = yield* bindKind(exp, loadRun);
        const evaluation = yield* kindPart(bound, "evaluation", "grid ranker-quality");
        const started = performance.now();
        const r = yield* evaluation.run(run.state, dataset, {
          split,
          mode: "whole",
          oracle: alpha === "oracle",
          ...(alpha === "oracle" ? {} : { groundTruthWeight: alpha }),
          ...runOptions(),
          ...(opts.limit === undefined ? {} : { limit: opts.limit }),
        });
        const m = evaluation.metrics(r) as { mIoU: number; mAP?: number; recallAtK?: number };
        const point: ProbePoint = {
          alpha: alpha === "oracle" ? 1 : alpha,
          kappa: k,
          mIoU: m.mIoU,
          mAP: m.mAP ?? null,
          recall: m.recallAtK ?? null,
          images: evaluation.images(r),
        };
        mkdirSync(join(dir, "ranker-quality"), { recursive: true });
        writeFileSync(
          file,
          JSON.stringify(
            { ...point, parameters, oracle: alpha === "oracle", limit: opts.limit ?? "all" } satisfies Cached,
            null,
            2,
          ) +
            "\n",
        );
        (opts.print ?? console.error)(
          `${dir}: κ ${k} ${alpha === "oracle" ? "oracle" : `α ${alpha}`}: mIoU ${
            point.mIoU.toFixed(2)
          } mAP ${fmt(point.mAP)} recall ${fmt(point.recall)} (${
            ((performance.now() - started) / 1000).toFixed(0)
          } s)`,
        );
        return point;
      });
    const points: ProbePoint[] = [];
    for (const alpha of alphas) {
      const p = yield* evaluate(e, kappa, alpha);
      if (p) points.push(p);
    }
    const control: ProbePoint[] = [];
    for (const alpha of [0, 1]) {
      const p = yield* evaluate(all, classes, alpha);
      if (p) control.push(p);
    }
    const oracle = yield* evaluate(e, kappa, "oracle");
    // The first ranker trained on this run's dataset, read once (loadRanker reuses it).
    let ranker:
      | { readonly dir: string; readonly run: LoadedRun }
      | undefined;
    for (const candidate of opts.rankers ?? []) {
      const r = yield* loadRun(candidate);
      if (r.experiment.data.dataset.name === e.data.dataset.name) {
        ranker = { dir: candidate, run: r };
        break;
      }
    }
    const ranked = ranker === undefined
      ? undefined
      : yield* rankedBy(dir, ranker, e as ExperimentOf<Segmenter>, run.state, parameters, dataset, opts);
    return {
      run: dir,
      dataset: e.data.dataset.name ?? "dataset",
      classes,
      kappa,
      step: run.step,
      experiment: e.name,
      seed: e.train.seed,
      points,
      control,
      ...(oracle ? { oracle } : {}),
      ...(ranked ? { ranked } : {}),
    } satisfies Sweep;
  });

/**
 * +LS at κ on a run's weights ranked by the ξ of the multi-label run `rankerDir` (kinds/ranker.ts reads it
 * as the independent scheme does), kept in `<run>/ranker-quality/k<κ>-ranker-<its digest>.json`.
 */
const rankedBy = (
  runDir: string,
  rankerRun: { readonly dir: string; readonly run: LoadedRun },
  e: ExperimentOf<Segmenter>,
  state: ReadonlyMap<string, Value>,
  parameters: string,
  dataset: Dataset,
  opts: { readonly limit?: number; readonly reportOnly?: boolean; readonly print?: (l: string) => void },
) =>
  Effect.gen(function* () {
    const kappa = (e.model.select as { k: number }).k;
    const rankerDir = rankerRun.dir;
    const withRanker = { ...e, model: { ...e.model, scheme: independent(rankerDir) } };
    const ranker = (yield* loadRanker(withRanker, () => Effect.succeed(rankerRun.run)))!;
    const file = join(
      runDir,
      "ranker-quality",
      `k${kappa}-ranker-${parametersDigest(ranker.state).slice(0, 12)}.json`,
    );
    const about = { ranker: rankerDir, step: rankerRun.run.step };
    if (existsSync(file)) {
      const cached = JSON.parse(readFileSync(file, "utf8")) as Cached;
      if (cached.parameters === parameters && sameLimit(cached, opts.limit)) {
        return { ...about, point: cached as ProbePoint };
      }
    }
    if (opts.reportOnly) return undefined;
    const started = performance.now();
    const r = yield* evaluate(e, new Map([...state, ...ranker.state]), dataset.classes, {
      split: dataset.split,
      mode: "whole",
      ranker,
      ...runOptions(),
      ...(opts.limit === undefined ? {} : { limit: opts.limit }),
    });
    const point: ProbePoint = {
      alpha: 0,
      kappa,
      mIoU: 100 * r.segmentation.mIoU,
      mAP: r.mAP,
      recall: r.recallAtK?.value ?? null,
      images: r.images,
    };
    mkdirSync(join(runDir, "ranker-quality"), { recursive: true });
    writeFileSync(
      file,
      JSON.stringify(
        { ...point, parameters, oracle: false, limit: opts.limit ?? "all" } satisfies Cached,
        null,
        2,
      ) + "\n",
    );
    (opts.print ?? console.error)(
      `${runDir}: κ ${kappa} ranked by ${rankerDir}: mIoU ${point.mIoU.toFixed(2)} mAP ${
        fmt(point.mAP)
      } recall ${fmt(point.recall)} (${((performance.now() - started) / 1000).toFixed(0)} s)`,
    );
    return { ...about, point };
  });

export const main = async (dirs: readonly string[], args: readonly string[]) => {
  const parsed = flag("alphas") === undefined ? ALPHAS : parseAlphas(flag("alphas")!);
  if (typeof parsed === "string") throw new RankerQualityError({ reason: parsed });
  const alphas = parsed;
  const limit = flag("limit") === undefined ? undefined : Number(flag("limit"));
  const reportOnly = args.includes("--report-only");
  const sweeps: Sweep[] = [];
  for (const dir of dirs) {
    const s = await Effect.runPromise(
      sweepRun(dir, alphas, { limit, reportOnly, rankers: flag("ranker")?.split(",") }),
    );
    if (s.points.length === 0 || s.control.length === 0) {
      console.error(`grid ranker-quality: ${dir}: nothing evaluated yet (run it without --report-only)`);
      continue;
    }
    sweeps.push(s);
  }
  if (sweeps.length === 0) return;
  mkdirSync("results", { recursive: true });
  const svgs = sweeps.map((s) => `results/ranker-quality-${basename(s.run)}.svg`);
  for (const [i, s] of sweeps.entries()) {
    writeFileSync(svgs[i], sweepSection(s, svgs[i]).chart);
    await formatGenerated(svgs[i]);
  }
  const flags = [
    flag("alphas") === undefined ? "" : `--alphas ${flag("alphas")}`,
    limit === undefined ? "" : `--limit ${limit}`,
    flag("ranker") === undefined ? "" : `--ranker ${flag("ranker")}`,
  ].filter((f) => f).join(" ");
  const command = `npx --yes deno@2.9.6 task grid ranker-quality ${dirs.join(" ")}${
    flags ? ` ${flags}` : ""
  }`;
  const part = resultsPart(sweeps, command, new Date().toISOString().slice(0, 10), svgs);
  const before = existsSync("RESULTS.md") ? readFileSync("RESULTS.md", "utf8") : "";
  writeFileSync("RESULTS.md", replaceSection(before, TITLE, part.join("\n") + "\n", 1));
  await formatGenerated("RESULTS.md");
  console.log(part.join("\n"));
};
