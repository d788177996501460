/**
 * The command line of a benchmark suite (`deno task bench <suite>`) or an experiment grid (`deno task
 * grid <grid>`), checked before the suite is loaded: `--help` / `-h` print its usage and run nothing, an
 * unknown flag or a bad value is one line (exit 2), and a suite that fails with a typed error (train's
 * `Stopped` on Ctrl-C) ends with one line too. The suites read their flags themselves; this module only
 * knows each suite's usage, as bench/main.ts and grids/main.ts declare it, so that none of them needs its
 * own help handling.
 *
 * Numeric values have the command line's bounds (dsl/bounds.ts).
 */
import { badPath, type IntBounds, outOfBounds } from "../dsl/bounds.ts";

export { BOUNDS } from "../dsl/bounds.ts";

/** How a suite reads a flag's value: `--name V` (grid_runs.ts's `flag`), `--name=V`, or a switch. */
export type FlagForm = "space" | "equals" | "switch";

/** What a flag's value must be. */
export type FlagValue =
  | { readonly _tag: "Int"; readonly bounds: IntBounds }
  | { readonly _tag: "IntList"; readonly bounds: IntBounds }
  | { readonly _tag: "Choice"; readonly choices: readonly string[] }
  | { readonly _tag: "Words" }
  | { readonly _tag: "Regex" }
  | { readonly _tag: "Size" }
  | { readonly _tag: "Path" }
  | { readonly _tag: "Text" };

export interface SuiteFlag {
  readonly form: FlagForm;
  /** The value's name in the usage (`N`, `REGEX`, `vit,mobilenet`); none for a switch. */
  readonly metavar?: string;
  readonly value?: FlagValue;
  readonly description: string;
}

export interface SuitePositional {
  readonly name: string;
  readonly required: boolean;
  readonly choices?: readonly string[];
  /** The last positional may take every remaining argument (`<experiment...>`). */
  readonly variadic?: boolean;
  readonly description: string;
}

/** A suite's usage: what it does, its positional arguments and its flags. */
export interface SuiteUsage {
  readonly summary: string;
  readonly positionals?: readonly SuitePositional[];
  readonly flags?: Readonly<Record<string, SuiteFlag>>;
  /** A rule between arguments (e.g. `panoptic diagnose` needs a run folder): the problem, or undefined. */
  readonly check?: (positionals: readonly string[]) => string | undefined;
}

/** The two programs whose suites this module checks: benchmarks and experiment grids. */
export type Program = "bench" | "grid";

/** How a user types a program: `npx --yes deno@2.9.6 task bench`. */
export const taskCommand = (program: Program): string => `npx --yes deno@2.9.6 task ${program}`;

/** What to do with a suite's command line. */
export type Parsed =
  | { readonly _tag: "Help"; readonly text: string }
  | { readonly _tag: "Invalid"; readonly line: string }
  | { readonly _tag: "Run" };

const invalid = (program: Program, suite: string, problem: string): Parsed => ({
  _tag: "Invalid",
  line: `${program} ${suite}: ${problem}; see ${taskCommand(program)} ${suite} --help`,
});

const valueProblem = (name: string, raw: string, v: FlagValue): string | undefined => {
  const refused = (why: string) => `--${name} ${raw}: ${why}`;
  switch (v._tag) {
    case "Int": {
      const why = outOfBounds(/^[+-]?\d+$/.test(raw) ? Number(raw) : NaN, v.bounds);
      return why && refused(why);
    }
    case "IntList": {
      const bad = raw.split(",").map((x) => outOfBounds(/^\d+$/.test(x) ? Number(x) : NaN, v.bounds));
      const why = bad.find((w) => w !== undefined);
      return why && refused(`each of the comma-separated values ${why}`);
    }
    case "Choice":
      return v.choices.includes(raw) ? undefined : refused(`expected one of ${v.choices.join(", ")}`);
    case "Words":
      return /^[\w.-]+(,[\w.-]+)*$/.test(raw) ? undefined : refused("expected comma-separated names");
    case "Regex":
      try {
        new RegExp(raw);
        return undefined;
      } catch (e) {
        return refused(`not a regular expression (${(e as Error).message})`);
      }
    case "Size":
      return /^[1-9]\d*x[1-9]\d*$/.test(raw) ? undefined : refused("expected HxW, e.g. 64x64");
    case "Path": {
      const why = badPath(raw);
      return why && refused(why);
    }
    case "Text":
      return undefined;
  }
};

/** The usage text `--help` prints. */
export const usageText = (program: Program, suite: string, u: SuiteUsage): string => {
  const flags = Object.entries(u.flags ?? {});
  const shape = ([name, f]: [string, SuiteFlag]) =>
    f.form === "switch" ? `--${name}` : `--${name}${f.form === "equals" ? "=" : " "}${f.metavar ?? "V"}`;
  const dots = (p: SuitePositional) => (p.variadic ? "..." : "");
  const synopsis = [
    ...(u.positionals ?? []).map((p) =>
      p.required ? `<${p.name}${dots(p)}>` : `[${p.choices?.join("|") ?? p.name}${dots(p)}]`
    ),
    ...flags.map((f) => `[${shape(f)}]`),
  ];
  const rows = [
    ...(u.positionals ?? []).map((p) => [p.choices?.join("|") ?? `<${p.name}${dots(p)}>`, p.description]),
    ...flags.map((f) => [shape(f), f[1].description]),
  ];
  const width = Math.max(0, ...rows.map(([left]) => left.length)) + 2;
  return [
    `usage: ${taskCommand(program)} ${suite}${synopsis.length ? " " + synopsis.join(" ") : ""}`,
    "",
    u.summary,
    ...(rows.length ? ["", ...rows.map(([left, text]) => `  ${left.padEnd(width)}${text}`)] : []),
    "",
  ].join("\n");
};

/** Checks `args` (what follows the suite's name) against the suite's usage. */
export const parseSuiteArgs = (
  program: Program,
  suite: string,
  u: SuiteUsage,
  args: readonly string[],
): Parsed => {
  if (args.includes("--help") || args.includes("-h")) {
    return { _tag: "Help", text: usageText(program, suite, u) };
  }
  const flags = u.flags ?? {};
  const positionals: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("-") || a === "-") {
      positionals.push(a);
      continue;
    }
    const [name, inline] = a.startsWith("--") && a.includes("=")
      ? [a.slice(2, a.indexOf("=")), a.slice(a.indexOf("=") + 1)]
      : [a.replace(/^--?/, ""), undefined];
    const f = Object.hasOwn(flags, name) ? flags[name] : undefined;
    if (!f) {
      const near = Object.keys(flags).filter((k) => k.startsWith(name.slice(0, 3)) && name.length > 2);
      return invalid(
        program,
        suite,
        `unknown flag ${a.split("=")[0]}${near.length ? ` (did you mean --${near[0]}?)` : ""}`,
      );
    }
    let raw: string;
    if (f.form === "switch") {
      if (inline !== undefined) return invalid(program, suite, `--${name} takes no value`);
      continue;
    } else if (f.form === "equals") {
      if (inline === undefined) {
        return invalid(program, suite, `--${name} needs a value: write --${name}=${f.metavar ?? "V"}`);
      }
      raw = inline;
    } else {
      if (inline !== undefined) return invalid(program, suite, `write --${name} ${inline} (a space, not =)`);
      if (i + 1 >= args.length || args[i + 1].startsWith("--")) {
        return invalid(program, suite, `--${name} needs a value`);
      }
      raw = args[++i];
    }
    const problem = f.value && valueProblem(name, raw, f.value);
    if (problem) return invalid(program, suite, problem);
  }
  const expected = u.positionals ?? [];
  if (positionals.length > expected.length && !expected.at(-1)?.variadic) {
    const extra = positionals.slice(expected.length);
    return invalid(
      program,
      suite,
      `unexpected argument${extra.length > 1 ? "s" : ""} ${extra.map((x) => JSON.stringify(x)).join(", ")}`,
    );
  }
  for (const [i, p] of expected.entries()) {
    const given = positionals[i];
    if (given === undefined) {
      if (p.required) return invalid(program, suite, `the argument <${p.name}> is missing`);
      continue;
    }
    if (p.choices && !p.choices.includes(given)) {
      return invalid(program, suite, `<${p.name}> ${given}: expected one of ${p.choices.join(", ")}`);
    }
    for (const value of p.variadic ? positionals.slice(i) : [given]) {
      const why = p.choices ? undefined : badPath(value);
      if (why) return invalid(program, suite, `<${p.name}> ${value}: ${why}`);
    }
  }
  const rule = u.check?.(positionals);
  return rule ? invalid(program, suite, rule) : { _tag: "Run" };
};

/**
 * The positional arguments of `args` (checked by `parseSuiteArgs`): what is neither a flag nor a `--name V`
 * flag's value.
 */
export const positionalArgs = (u: SuiteUsage, args: readonly string[]): string[] => {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("-") || a === "-") out.push(a);
    else if (!a.includes("=") && u.flags?.[a.replace(/^--?/, "")]?.form === "space") i++;
  }
  return out;
};

/**
 * How a suite that failed ends: a typed error (an Effect error with a `_tag`, e.g. train's `Stopped`
 * after Ctrl-C, which wrote a checkpoint) as one line and status 130 for a stop, 1 otherwise; undefined
 * for anything else (a programming error keeps its stack trace).
 */
export const failureOutcome = (
  program: Program,
  suite: string,
  error: unknown,
): { readonly lines: readonly string[]; readonly code: number } | undefined => {
  const tag = (error as { _tag?: unknown } | null)?._tag;
  if (typeof tag !== "string") return undefined;
  const message = error instanceof Error ? error.message : String(error);
  return { lines: [`${program} ${suite}: ${message.split("\n")[0]}`], code: tag === "Stopped" ? 130 : 1 };
};

/** A suite of a program: a line for the program's overview, its usage, and how to run it. */
export interface Suite extends SuiteUsage {
  /** One line for `<program> --help`. */
  readonly title: string;
  readonly run: (args: string[]) => Promise<unknown>;
}

/** An integer flag value within `bounds`. */
export const int = (bounds: IntBounds): FlagValue => ({ _tag: "Int", bounds });

/** The suites' list for `<program> --help`. */
const overview = (program: Program, suites: Readonly<Record<string, Suite>>) => {
  // Names padded to 14 columns, or to the longest name and two spaces.
  const width = Math.max(14, ...Object.keys(suites).map((n) => n.length + 2));
  return [
    `usage: ${taskCommand(program)} <${program === "bench" ? "suite" : "grid"}> [flags]   ` +
    `(${taskCommand(program)} <${program === "bench" ? "suite" : "grid"}> --help for its flags)`,
    "",
    ...Object.entries(suites).map(([name, s]) => `  ${name.padEnd(width)}${s.title}`),
    "",
  ].join("\n");
};

/**
 * Runs `<program> <suite> [args]`: the overview for `--help`, one line for an unknown suite (or one that
 * moved to the other program, `moved`), the suite's usage for its `--help`, one line for a bad flag, then
 * the suite. Returns the exit status.
 */
export const dispatch = async (
  program: Program,
  suites: Readonly<Record<string, Suite>>,
  args: readonly string[],
  moved: Readonly<Record<string, Program>> = {},
): Promise<number> => {
  const [suite, ...rest] = args;
  const what = program === "bench" ? "suite" : "grid";
  if (suite === undefined || suite === "--help" || suite === "-h") {
    if (suite === undefined) {
      console.error(`${program}: which ${what}? see ${taskCommand(program)} --help`);
      return 2;
    }
    console.log(overview(program, suites));
    return 0;
  }
  if (Object.hasOwn(moved, suite)) {
    console.error(
      `${program} ${suite}: it moved; run: ${taskCommand(moved[suite])} ${[suite, ...rest].join(" ")}`,
    );
    return 2;
  }
  const s = Object.hasOwn(suites, suite) ? suites[suite] : undefined;
  if (!s) {
    console.error(`${program}: unknown ${what} ${suite}; see ${taskCommand(program)} --help`);
    return 2;
  }
  const parsed = parseSuiteArgs(program, suite, s, rest);
  if (parsed._tag === "Help") {
    console.log(parsed.text);
    return 0;
  }
  if (parsed._tag === "Invalid") {
    console.error(parsed.line);
    return 2;
  }
  try {
    await s.run(rest);
    return 0;
  } catch (e) {
    const outcome = failureOutcome(program, suite, e);
    if (!outcome) throw e;
    for (const line of outcome.lines) console.error(line);
    return outcome.code;
  }
};
