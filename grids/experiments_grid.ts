/**
 * `deno task grid runs <experiment...> [--seeds N] [--steps N] [--frozen-backbone D] [--name NAME] [--report FILE]`: the
 * generic grid — any experiment files (`.ts` modules or `.json` specs; a folder stands for the files
 * directly in it, a quoted glob such as `'experiments/rankseg/camvid-*.ts'` for the files it matches) ×
 * seeds 0…N−1, each trained into `runs/grid-<name>/<file's stem>[-<steps>steps]-s<seed>` (resumable like
 * every grid), then a RESULTS-style table: the headline metric (mIoU, PQ for a panoptic experiment, mAP for a
 * multi-label-only one)
 * mean ± std over seeds per experiment, written as the `# Grid <name>` part of `--report FILE` (other
 * parts of the file kept) with a bar chart beside it, or to stdout. `--slurm` submits the runs as a job
 * array and this report as a job after it.
 */
import { Data, Effect } from "effect";
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, dirname, extname, join, relative } from "node:path";
import { type Experiment, loadExperiment } from "../mod.ts";
import { flag } from "../figures/flags.ts";
import { formatGenerated, replaceSection, table } from "../figures/markdown.ts";
import { mean, std } from "../figures/stats.ts";
import { taskCommand } from "../figures/command_line.ts";
import {
  curveRun,
  finishedRun,
  gridFlags,
  type GridRun,
  learningCurve,
  seedRun,
  withGridFrozen,
} from "./grid_runs.ts";
import { budgetSentence, DEFAULT_TOLERANCE, parseCurveFlag, plateau } from "./plateau.ts";
import { type Headline, headline } from "./run_record.ts";
import { barChart } from "./bar_chart.ts";
import { slurmRequested, withoutSlurmFlags } from "./slurm/slurm_flags.ts";
import { submitGrid } from "./slurm/submit.ts";

/** An argument of the generic grid that names no experiment, or a name two experiments share. */
export class GridInputError extends Data.TaggedError("GridInputError")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason;
  }
}

const SPEC_FILE = /\.(ts|mts|js|mjs|json)$/;
const stem = (file: string) => basename(file, extname(file));
const isDir = (p: string) => statSync(p).isDirectory();

/** `*` and `?` of a file-name glob as a regular expression over whole names. */
const globPattern = (glob: string) =>
  new RegExp(`^${glob.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);

/**
 * The experiment files the arguments name, in the order given (a folder's and a glob's sorted by name),
 * each once; one line for an argument that names none, or for two files with one stem (their runs would
 * share folders).
 */
export const experimentFiles = (inputs: readonly string[]): string[] => {
  const files: string[] = [];
  for (const input of inputs) {
    if (existsSync(input)) {
      files.push(
        ...(isDir(input)
          ? readdirSync(input).filter((f) => SPEC_FILE.test(f) && !isDir(join(input, f))).sort().map((f) =>
            join(input, f)
          )
          : [input]),
      );
      continue;
    }
    const [dir, glob] = [dirname(input), basename(input)];
    if (!/[*?]/.test(glob)) throw new GridInputError({ reason: `${input}: no such file or folder` });
    const re = globPattern(glob);
    const matched = existsSync(dir) && isDir(dir)
      ? readdirSync(dir).filter((f) => re.test(f) && SPEC_FILE.test(f)).sort().map((f) => join(dir, f))
      : [];
    if (matched.length === 0) throw new GridInputError({ reason: `${input}: no experiment file matches` });
    files.push(...matched);
  }
  const unique = [...new Set(files)];
  if (unique.length === 0) throw new GridInputError({ reason: `${inputs.join(" ")}: no experiment files` });
  for (const [i, f] of unique.entries()) {
    const other = unique.slice(0, i).find((g) => stem(g) === stem(f));
    if (other) {
      throw new GridInputError({
        reason: `${other} and ${f}: two experiments named ${stem(f)} (their runs would share folders); ` +
          "run them as two grids (--name)",
      });
    }
  }
  return unique;
};

/** The grid's name: `--name`, else the first argument's (a folder's name, a file's stem, a glob's folder). */
export const gridName = (inputs: readonly string[], given: string | undefined): string => {
  const name = given ??
    (existsSync(inputs[0]) ? stem(inputs[0]) : basename(dirname(inputs[0])));
  if (!/^[\w.-]+$/.test(name) || name === "." || name === "..") {
    throw new GridInputError({
      reason: `--name ${name}: use letters, digits, '.', '_' and '-' (it names the folder runs/grid-<name>)`,
    });
  }
  return name;
};

/** One experiment of the grid and its finished runs' headlines. */
export interface ExperimentRow {
  readonly file: string;
  readonly e: Experiment;
  readonly runs: readonly Headline[];
  /** The steps its runs trained when a learning curve chose them (`--curve`). */
  readonly steps?: number;
}

/** The `# Grid <name>` part's body: how it was produced, and the table. */
export const reportBody = (
  rows: readonly ExperimentRow[],
  seeds: number,
  steps: number | undefined,
  command: string,
  date: string,
  chart?: string,
  budgets: readonly string[] = [],
): string[] => {
  const done = rows.reduce((n, r) => n + r.runs.length, 0);
  const values = (r: ExperimentRow) => r.runs.map((h) => h.value);
  const maps = (r: ExperimentRow) => r.runs.flatMap((h) => (h.mAP === undefined ? [] : [h.mAP]));
  // The headline over its two class groups (PQ_th / PQ_st, base / novel mIoU), where a row's runs have it.
  const splits = (r: ExperimentRow, i: 0 | 1) => r.runs.flatMap((h) => (h.split ? [h.split.values[i]] : []));
  const splitCell = (r: ExperimentRow) => {
    const names = r.runs.find((h) => h.split)?.split?.names;
    if (!names) return "—";
    const [a, b] = [splits(r, 0), splits(r, 1)];
    return `${names[0]} ${mean(a).toFixed(2)} ± ${std(a).toFixed(2)}, ${names[1]} ${mean(b).toFixed(2)} ± ${
      std(b).toFixed(2)
    }`;
  };
  const anySplit = rows.some((r) => r.runs.some((h) => h.split));
  return [
    `Produced by \`${command}\` on ${date}: ${done} of ${
      rows.length * seeds
    } runs finished. Headline metric ` +
    `per experiment: mIoU (semantic)${
      rows.some((r) => r.runs.some((h) => h.metric === "mAP")) ? ", ξ's mAP (multi-label only)" : ""
    } or PQ (panoptic), in percent, mean ± std over the seeds that finished.`,
    "",
    table<ExperimentRow>(
      [
        { header: "experiment", cell: (r) => r.e.name },
        { header: "spec", align: "left", cell: (r) => `\`${r.file}\`` },
        { header: "steps", cell: (r) => String(r.steps ?? steps ?? r.e.train.steps) },
        { header: "metric", align: "left", cell: (r) => r.runs[0]?.metric ?? "—" },
        {
          header: "mean ± std",
          cell: (r) =>
            r.runs.length ? `${mean(values(r)).toFixed(2)} ± ${std(values(r)).toFixed(2)}` : "not run yet",
        },
        { header: "per seed", align: "left", cell: (r) => values(r).map((x) => x.toFixed(2)).join(", ") },
        { header: "seeds", cell: (r) => `${r.runs.length}/${seeds}` },
        { header: "mAP", cell: (r) => (maps(r).length ? mean(maps(r)).toFixed(2) : "—") },
        ...(anySplit
          ? [{ header: "by class group (mean ± std)", align: "left" as const, cell: splitCell }]
          : []),
      ],
      rows,
      "plain",
    ),
    ...budgets.flatMap((b) => ["", b]),
    ...(chart ? ["", `![headline metric per experiment](${chart})`] : []),
    "",
  ];
};

/** `--curve STEPS:EVERY`, `--curve-of FILE` and `--plateau-tolerance X`, checked; undefined without `--curve`. */
const curveFlags = (steps: number | undefined) => {
  const text = flag("curve");
  if (text === undefined) {
    for (const f of ["curve-of", "plateau-tolerance"]) {
      if (flag(f) !== undefined) throw new GridInputError({ reason: `--${f} needs --curve STEPS:EVERY` });
    }
    return undefined;
  }
  const parsed = parseCurveFlag(text);
  if (typeof parsed === "string") throw new GridInputError({ reason: parsed });
  if (steps !== undefined) {
    throw new GridInputError({ reason: "--curve and --steps: the curve picks the steps; give one of them" });
  }
  const tolerance = Number(flag("plateau-tolerance") ?? DEFAULT_TOLERANCE);
  if (!(tolerance >= 0)) {
    throw new GridInputError({
      reason: `--plateau-tolerance ${flag("plateau-tolerance")}: expected mIoU ≥ 0`,
    });
  }
  return { ...parsed, tolerance, of: flag("curve-of") };
};

export const main = async (inputs: readonly string[], args: readonly string[]): Promise<void> => {
  const { seeds, steps, frozenBackbone, only, reportOnly } = gridFlags();
  const files = experimentFiles(inputs).filter((f) => only.test(basename(f)));
  if (files.length === 0) {
    throw new GridInputError({ reason: `--only ${flag("only")}: matches none of the files` });
  }
  const name = gridName(inputs, flag("name"));
  const root = join("runs", `grid-${name}`);
  // Learning curves first (`--curve`): each experiment's (or `--curve-of`'s one) plateau is its budget.
  const curve = curveFlags(steps);
  const budgets = new Map<string, { steps: number; sentence: string }>();
  if (curve) {
    const curveFiles = curve.of === undefined ? files : [curve.of];
    for (const file of curveFiles) {
      const run = curveRun(
        root,
        file,
        withGridFrozen(await Effect.runPromise(loadExperiment(file)), frozenBackbone),
        { steps: curve.steps, every: curve.every, frozenBackbone },
        stem(file),
      );
      if (slurmRequested() && !existsSync(run.record)) {
        throw new GridInputError({
          reason: `--curve with --slurm: the learning curve ${run.dir} has not finished; train the curves ` +
            "here first (the same command without --slurm) or pass --steps",
        });
      }
      await Effect.runPromise(finishedRun(run, reportOnly));
      const points = learningCurve(join(run.dir, "metrics.jsonl"));
      const p = plateau(points, curve.tolerance);
      if (p === undefined) continue;
      const budget = { steps: p.step, sentence: budgetSentence(`\`${file}\``, points, p) };
      for (const f of curve.of === undefined ? [file] : files) budgets.set(f, budget);
    }
  }
  const planned: { file: string; base: Experiment; runs: GridRun[] }[] = [];
  for (const file of files) {
    const base = withGridFrozen(await Effect.runPromise(loadExperiment(file)), frozenBackbone);
    if (curve && !budgets.has(file)) {
      console.error(`grid runs: ${file}: its learning curve has not run yet; its runs wait for it`);
      planned.push({ file, base, runs: [] });
      continue;
    }
    const budget = budgets.get(file)?.steps ?? steps;
    const runs = Array.from(
      { length: seeds },
      (_, seed) => seedRun(root, file, base, { steps: budget, frozenBackbone }, seed, stem(file)),
    );
    planned.push({ file, base, runs });
  }
  if (slurmRequested()) return await submitGrid("runs", args, root, planned.flatMap((p) => p.runs));
  const rows: ExperimentRow[] = [];
  for (const { file, base, runs } of planned) {
    const headlines: Headline[] = [];
    for (const run of runs) {
      const record = await Effect.runPromise(finishedRun(run, reportOnly));
      if (record !== undefined) headlines.push(headline(record));
    }
    const budget = budgets.get(file)?.steps;
    rows.push({ file, e: base, runs: headlines, ...(budget === undefined ? {} : { steps: budget }) });
  }
  const sentences = [...new Set([...budgets.values()].map((b) => b.sentence))];
  const command = `${taskCommand("grid")} runs ${
    withoutSlurmFlags(args).filter((a) => a !== "--report-only").join(" ")
  }`;
  const date = new Date().toISOString().slice(0, 10);
  const report = flag("report");
  if (report === undefined) {
    console.log(
      [`# Grid ${name}`, "", ...reportBody(rows, seeds, steps, command, date, undefined, sentences)].join(
        "\n",
      ),
    );
    return;
  }
  // Beside the other grids' charts: results/ next to the report.
  const svg = join(dirname(report), "results", `grid-${name}.svg`);
  await mkdir(dirname(svg), { recursive: true });
  const bars = rows.filter((r) => r.runs.length).map((r) => ({
    label: stem(r.file),
    mean: mean(r.runs.map((h) => h.value)),
    std: std(r.runs.map((h) => h.value)),
  }));
  await writeFile(
    svg,
    barChart(`grid ${name}: headline metric per experiment (mean ± std over seeds)`, bars),
  );
  const body = reportBody(rows, seeds, steps, command, date, relative(dirname(report), svg), sentences);
  const before = existsSync(report) ? await readFile(report, "utf8") : "";
  await writeFile(report, replaceSection(before, `Grid ${name}`, body.join("\n"), 1));
  // Formatted as `deno fmt` would, so a report inside the repository passes `deno fmt --check`; a file
  // deno fmt does not cover (outside the repository's formatting, e.g. under scratch/) stays as written.
  for (const file of [svg, report]) await formatGenerated(file).catch(() => {});
  console.log(`grid runs: wrote the "Grid ${name}" part of ${report} and ${svg}`);
};
