/**
 * The `--slurm` flags every grid takes: their usage (grids/main.ts lists them in each grid's `--help`),
 * reading them from the command line, and the grid's own arguments without them (what the report job
 * runs, with `--report-only`).
 */
import { BOUNDS, int, type SuiteFlag } from "../../figures/command_line.ts";
import { flag } from "../../figures/flags.ts";

/** The flags that only mean something with `--slurm`; `--threads` also sets each task's CPUs. */
export const SLURM_FLAGS: Readonly<Record<string, SuiteFlag>> = {
  slurm: {
    form: "switch",
    description:
      "submit the runs not finished yet as one Slurm job array (one task per run, with --threads " +
      "CPUs, default 1) and the report as a job that runs after every task (afterany); prints the job ids",
  },
  partition: {
    form: "space",
    metavar: "P",
    value: { _tag: "Text" },
    description: "--slurm: the partition of every job",
  },
  time: {
    form: "space",
    metavar: "T",
    value: { _tag: "Text" },
    description: "--slurm: the time limit of each task and of the report (a task stopped at its limit " +
      "checkpoints and resumes when submitted again)",
  },
  account: {
    form: "space",
    metavar: "A",
    value: { _tag: "Text" },
    description: "--slurm: the account every job is charged to",
  },
  "mem-per-cpu": {
    form: "space",
    metavar: "M",
    value: { _tag: "Text" },
    description: "--slurm: memory per CPU of every job (default: the cluster's DefMemPerCPU)",
  },
  "max-parallel": {
    form: "space",
    metavar: "N",
    value: int(BOUNDS.parallel),
    description: "--slurm: at most N tasks of the array at once (the array's %N throttle)",
  },
  "sbatch-args": {
    form: "equals",
    metavar: '"…"',
    value: { _tag: "Text" },
    description: "--slurm: more sbatch options for every job, as one shell-quoted string",
  },
};

/** Whether the command line asks to submit the grid to Slurm. */
export const slurmRequested = (args: readonly string[] = Deno.args): boolean => args.includes("--slurm");

/** What the submission passes to sbatch, from the command line. */
export interface SlurmOptions {
  readonly partition?: string;
  readonly time?: string;
  readonly account?: string;
  readonly memPerCpu?: string;
  readonly maxParallel?: number;
  /** `--sbatch-args`, split as a shell would split words (quotes group, no expansion). */
  readonly sbatchArgs: readonly string[];
  /** Each run's intra-op threads, and its task's `--cpus-per-task`. */
  readonly threads: number;
  readonly workers?: number;
}

/** Words as a shell splits them: whitespace separates, '…' and "…" group (no escapes, no expansion). */
export const shellWords = (text: string): string[] => {
  const words: string[] = [];
  let word: string | undefined, quote: string | undefined;
  for (const c of text) {
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      word ??= "";
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else word = (word ?? "") + c;
  }
  if (word !== undefined) words.push(word);
  return words;
};

const sbatchArgsFlag = (args: readonly string[]) =>
  args.find((a) => a.startsWith("--sbatch-args="))?.slice("--sbatch-args=".length);

export const slurmOptions = (args: readonly string[] = Deno.args): SlurmOptions => {
  const optional = <K extends string, V>(key: K, v: V | undefined) =>
    v === undefined ? {} : { [key]: v } as { [k in K]: V };
  return {
    ...optional("partition", flag("partition")),
    ...optional("time", flag("time")),
    ...optional("account", flag("account")),
    ...optional("memPerCpu", flag("mem-per-cpu")),
    ...optional("maxParallel", flag("max-parallel") === undefined ? undefined : Number(flag("max-parallel"))),
    sbatchArgs: shellWords(sbatchArgsFlag(args) ?? ""),
    threads: Number(flag("threads") ?? 1),
    ...optional("workers", flag("workers") === undefined ? undefined : Number(flag("workers"))),
  };
};

/**
 * Why these arguments cannot be submitted, or undefined: a Slurm flag without `--slurm`, or `--slurm`
 * with `--report-only` (the report job is part of every submission).
 */
export const slurmFlagsProblem = (args: readonly string[]): string | undefined => {
  const given = Object.keys(SLURM_FLAGS).filter((name) =>
    name !== "slurm" && args.some((a) => a === `--${name}` || a.startsWith(`--${name}=`))
  );
  if (!slurmRequested(args)) {
    return given.length ? `--${given[0]} needs --slurm` : undefined;
  }
  return args.includes("--report-only")
    ? "--slurm and --report-only: give one (every submission ends with a report job)"
    : undefined;
};

/** The grid's arguments without the Slurm flags and their values: what the report job passes on. */
export const withoutSlurmFlags = (args: readonly string[]): string[] => {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const name = a.startsWith("--") ? a.slice(2).split("=")[0] : undefined;
    const f = name === undefined || !Object.hasOwn(SLURM_FLAGS, name) ? undefined : SLURM_FLAGS[name];
    if (!f) out.push(a);
    else if (f.form === "space" && !a.includes("=")) i++;
  }
  return out;
};
