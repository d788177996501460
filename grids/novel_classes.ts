/**
 * `deno task grid novel-classes <run-dir>... [--limit N] [--threads T] [--report-only]`: where a trained
 * LarvSeg model's novel classes lose (eval/novel_diagnosis.ts) — on the validation split, whether a novel
 * class's pixels are won by it, the rank and margin of its logit, which classes win them instead, and
 * whether the pixel-averaged logit that LarvSeg's image-level loss trains recognises the class per image.
 *
 * Each run's diagnosis is kept in `<run>/novel-classes.json` (with the checkpoint's parameter digest and
 * `--limit`), so a second call computes only what is missing; `--report-only` computes nothing. The part of
 * RESULTS.md it writes has a row per run, the per-class figures of the first run of each experiment, and findings
 * computed from them. It trains nothing: the runs come from a grid (e.g. `grid runs experiments/larvseg/…`).
 */
import { Data, Effect } from "effect";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  diagnoseNovelClasses,
  type ExperimentOf,
  loadRun,
  type NovelDiagnosis,
  novelDiagnosisProblem,
  openDataset,
  parametersDigest,
  type Segmenter,
} from "../mod.ts";
import { headline } from "./run_record.ts";
import { recordIn, runOptions } from "./grid_runs.ts";
import { sameLimit } from "./ranker_quality.ts";
import { flag } from "../figures/flags.ts";
import { formatGenerated, replaceSection, table } from "../figures/markdown.ts";
import { mean, std } from "../figures/stats.ts";

export const TITLE = "LarvSeg: where the novel classes lose (diagnosis)";

/** A run the diagnosis cannot read; the message is the one line the CLI prints. */
export class NovelClassesError extends Data.TaggedError("NovelClassesError")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason;
  }
}

/** One run's diagnosis, with what trained it. */
export interface Diagnosed {
  readonly run: string;
  readonly experiment: string;
  readonly seed: number;
  readonly step: number;
  readonly classes: number;
  /** The run's own evaluation record's novel mIoU (percent), where it has one. */
  readonly novelMIoU?: number;
  readonly diagnosis: NovelDiagnosis;
}

interface Cached {
  readonly parameters: string;
  readonly images: number;
  /** `--limit` it was computed with ("all": the whole split; absent in files written before it). */
  readonly limit?: number | "all";
  readonly diagnosis: NovelDiagnosis;
}

const cacheFile = (dir: string) => join(dir, "novel-classes.json");

// JSON has no NaN: kept as null, read back as NaN.
const toJson = (x: unknown) =>
  JSON.stringify(x, (_, v) => (typeof v === "number" && Number.isNaN(v) ? null : v), 2);
const fromJson = <T>(text: string): T => JSON.parse(text, (_, v) => (v === null ? NaN : v)) as T;

/** Diagnoses one run (computing it unless its folder holds it for these weights, or `reportOnly`). */
export const diagnoseRun = (
  dir: string,
  opts: { readonly limit?: number; readonly reportOnly?: boolean } = {},
) =>
  Effect.gen(function* () {
    const run = yield* loadRun(dir);
    const e = run.experiment;
    const problem = novelDiagnosisProblem(e);
    if (problem) return yield* new NovelClassesError({ reason: `${dir}: ${problem}` });
    const seg = e as ExperimentOf<Segmenter>;
    const parameters = parametersDigest(run.state);
    const record = recordIn(dir, e);
    const split = existsSync(record) ? headline(record).split : undefined;
    const about = {
      run: dir,
      experiment: e.name,
      seed: e.train.seed,
      step: run.step,
      classes: seg.model.classes,
      ...(split?.names[1] === "novel" ? { novelMIoU: split.values[1] } : {}),
    };
    if (existsSync(cacheFile(dir))) {
      const cached = fromJson<Cached>(readFileSync(cacheFile(dir), "utf8"));
      if (cached.parameters === parameters && sameLimit(cached, opts.limit)) {
        return { ...about, diagnosis: cached.diagnosis } satisfies Diagnosed;
      }
    }
    if (opts.reportOnly) return undefined;
    const started = performance.now();
    const dataset = yield* openDataset(e.data.dataset, e.data.dataset.testSplit);
    const diagnosis = yield* diagnoseNovelClasses(seg, run.state, dataset, {
      limit: opts.limit,
      ...runOptions(),
    });
    writeFileSync(
      cacheFile(dir),
      toJson(
        { parameters, images: diagnosis.images, limit: opts.limit ?? "all", diagnosis } satisfies Cached,
      ) +
        "\n",
    );
    console.error(
      `${dir}: novel pixels won ${fmt(diagnosis.novel.won)} %, image-level AP novel ${
        fmt(diagnosis.imageMAP.novel)
      } (${diagnosis.images} images, ${((performance.now() - started) / 1000).toFixed(0)} s)`,
    );
    return { ...about, diagnosis } satisfies Diagnosed;
  });

const fmt = (x: number | undefined | null, digits = 2) =>
  x === undefined || x === null || Number.isNaN(x) ? "—" : x.toFixed(digits);
const spread = (xs: readonly number[]) => xs.length > 1 ? `${fmt(mean(xs))} ± ${fmt(std(xs))}` : fmt(xs[0]);
const winnersText = (ws: readonly { name: string; share: number }[]) =>
  ws.length === 0 ? "—" : ws.map((w) => `${w.name} ${w.share.toFixed(0)} %`).join(", ");

/** One row per run. */
export const runTable = (ds: readonly Diagnosed[]): string =>
  table<Diagnosed>(
    [
      { header: "run", cell: (d) => `\`${d.run}\`` },
      { header: "novel mIoU", align: "right", cell: (d) => fmt(d.novelMIoU) },
      {
        header: "pixels won: novel / base (class mean, %)",
        align: "right",
        cell: (d) => `${fmt(d.diagnosis.novel.classMeanWon)} / ${fmt(d.diagnosis.base.classMeanWon)}`,
      },
      {
        header: "true class's rank of K: novel / base",
        align: "right",
        cell: (d) =>
          `${fmt(d.diagnosis.novel.meanRank, 1)} / ${fmt(d.diagnosis.base.meanRank, 1)} of ${d.classes}`,
      },
      {
        header: "margin: novel / base",
        align: "right",
        cell: (d) => `${fmt(d.diagnosis.novel.meanMargin)} / ${fmt(d.diagnosis.base.meanMargin)}`,
      },
      {
        header: "image-level AP: novel / base (chance)",
        align: "right",
        cell: (d) =>
          `${fmt(d.diagnosis.imageMAP.novel, 1)} / ${fmt(d.diagnosis.imageMAP.base, 1)} (${
            fmt(d.diagnosis.imageChance.novel, 1)
          } / ${fmt(d.diagnosis.imageChance.base, 1)})`,
      },
      { header: "novel pixels go to", align: "left", cell: (d) => winnersText(d.diagnosis.winners) },
    ],
    ds,
    "plain",
  );

/** The per-class table's rows: the novel classes with validation pixels, at most the `SHOWN` largest. */
export const SHOWN = 10;
const withPixels = (d: Diagnosed) => d.diagnosis.classes.filter((c) => c.pixels > 0);
const shownClasses = (d: Diagnosed) => withPixels(d).sort((a, b) => b.pixels - a.pixels).slice(0, SHOWN);

/** The per-class figures of one run. */
export const classTable = (d: Diagnosed): string =>
  table<NovelDiagnosis["classes"][number]>(
    [
      { header: "novel class", cell: (c) => c.name },
      { header: "val pixels", align: "right", cell: (c) => String(c.pixels) },
      { header: "won (%)", align: "right", cell: (c) => fmt(c.won) },
      { header: "rank of K", align: "right", cell: (c) => fmt(c.meanRank, 1) },
      { header: "margin", align: "right", cell: (c) => fmt(c.meanMargin) },
      { header: "image-level AP", align: "right", cell: (c) => fmt(c.imageAP, 1) },
      {
        header: "most of its pixels go to",
        align: "left",
        cell: (c) => (c.winner ? `${c.winner.name} (${c.winner.share.toFixed(0)} %)` : "—"),
      },
    ],
    shownClasses(d),
    "plain",
  );

/** Runs grouped by experiment, in first-seen order. */
const byExperiment = (ds: readonly Diagnosed[]) => {
  const groups = new Map<string, Diagnosed[]>();
  for (const d of ds) groups.set(d.experiment, [...(groups.get(d.experiment) ?? []), d]);
  return [...groups.entries()];
};

/**
 * The findings, one per experiment, from the figures above: how many novel pixels its classes win, how far
 * their logits are from winning, and whether the image-level score recognises them (its AP against the base
 * classes' and against chance) — recognised but not localised, or not recognised either.
 */
export const findings = (ds: readonly Diagnosed[]): string[] => {
  if (ds.length === 0) return [];
  const lines = ["Findings (mean ± std over each experiment's runs):", ""];
  for (const [name, runs] of byExperiment(ds)) {
    const of = (f: (d: NovelDiagnosis) => number) =>
      runs.map((r) => f(r.diagnosis)).filter((x) => !Number.isNaN(x));
    const novelAP = of((d) => d.imageMAP.novel), baseAP = of((d) => d.imageMAP.base);
    const chance = of((d) => d.imageChance.novel);
    const won = of((d) => d.novel.classMeanWon), baseWon = of((d) => d.base.classMeanWon);
    const recognised = mean(novelAP) >= mean(chance) + 2 * Math.max(std(novelAP), 1);
    const verdict = !recognised
      ? "the pixel-averaged logit does not rank images holding a novel class above the others beyond chance: the image-level signal itself has not taught the novel classes"
      : mean(won) < 1
      ? "the pixel-averaged logit recognises the images that hold a novel class above chance, yet the classes win almost no pixels: recognised per image, not localised per pixel"
      : "the novel classes are recognised per image and win some of their pixels";
    const rank = spread(of((d) => d.novel.meanRank)), below = spread(of((d) => -d.novel.meanMargin));
    const k = runs[0].classes, runsText = `${runs.length} run${runs.length === 1 ? "" : "s"}`;
    lines.push(
      `- \`${name}\` (${runsText}): its novel classes win ${
        spread(won)
      } % of their pixels (class mean; the ` +
        `base classes ${
          spread(baseWon)
        } %); the true novel class's logit ranks ${rank} of ${k} on average (a ` +
        `random one would rank ${
          ((k + 1) / 2).toFixed(1)
        }), ${below} below the winning logit. Image-level AP ` +
        `of the pixel-averaged logit: novel ${spread(novelAP)}, base ${spread(baseAP)}, chance ` +
        `${spread(chance)}: ${verdict}. Most lost novel pixels go to ${
          winnersText(runs[0].diagnosis.winners)
        } ` +
        "(first run).",
    );
  }
  return [...lines, ""];
};

/** The RESULTS.md part. */
export const resultsPart = (ds: readonly Diagnosed[], command: string, date: string): string[] => [
  `Produced by \`${command}\` on ${date}; this part is written by that command.`,
  "",
  "Method. Each run's K-class logits at the input size of every validation image (whole-image inference), " +
  "read at its labelled pixels: whether the true class has the highest logit (the pixel is won — the " +
  "intersection IoU counts), its rank among the K logits and its margin to the best other logit (negative: " +
  "by how much it loses), pooled per class and averaged over the base and the novel classes; for the novel " +
  "pixels lost, the class that wins them. Image level: the logit averaged over an image's pixels — what " +
  "LarvSeg's image-level loss trains — ranked over the images by average precision against the classes " +
  "present; chance is the AP of a random ranking (the share of images holding the class). A model with top-κ " +
  "selection (the RankSeg + LarvSeg row) gives the classes it did not select the masked logit −100, as its " +
  "argmax sees them, so its margins and image-level APs include the selection.",
  "",
  runTable(ds),
  "",
  ...byExperiment(ds).flatMap(([name, runs]) => [
    `Per novel class, \`${name}\`, \`${runs[0].run}\` (step ${runs[0].step}, ${runs[0].diagnosis.images} ` +
    `images${
      withPixels(runs[0]).length > SHOWN
        ? `; the ${SHOWN} of its ${withPixels(runs[0]).length} novel classes with the most pixels`
        : ""
    }):`,
    "",
    classTable(runs[0]),
    "",
  ]),
  ...findings(ds),
];

export const main = async (dirs: readonly string[], args: readonly string[]) => {
  const limit = flag("limit") === undefined ? undefined : Number(flag("limit"));
  const reportOnly = args.includes("--report-only");
  const diagnosed: Diagnosed[] = [];
  for (const dir of dirs) {
    const d = await Effect.runPromise(diagnoseRun(dir, { limit, reportOnly }));
    if (d === undefined) {
      console.error(`grid novel-classes: ${dir}: not diagnosed yet (run it without --report-only)`);
      continue;
    }
    diagnosed.push(d);
  }
  if (diagnosed.length === 0) return;
  const command = `npx --yes deno@2.9.6 task grid novel-classes ${dirs.join(" ")}${
    limit === undefined ? "" : ` --limit ${limit}`
  }`;
  const part = resultsPart(diagnosed, command, new Date().toISOString().slice(0, 10));
  const before = existsSync("RESULTS.md") ? readFileSync("RESULTS.md", "utf8") : "";
  writeFileSync("RESULTS.md", replaceSection(before, TITLE, part.join("\n") + "\n", 1));
  await formatGenerated("RESULTS.md");
  console.log(part.join("\n"));
};
