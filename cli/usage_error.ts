/**
 * A command line that does not parse, as one line: which flag or argument, what is wrong with it, and
 * where the help is. effect/cli reports such a line as a `ShowHelp` error carrying the parse errors and
 * would print the whole help text; a user who mistyped one flag needs the one line, not the manual.
 */
import type { CliError } from "effect/cli";

type ParseError = CliError.ShowHelp["errors"][number];

/** How a user runs a task (README): the root command's name, so that help and hints say it. */
export const TASK = "npx --yes deno@2.9.6 task";

/** Unexpected arguments listed by name before the rest are counted (a shell's `*.jpg` can be thousands). */
const LISTED = 3;

/** `train: unknown flag --stpes (did you mean --steps?); see npx --yes deno@2.9.6 task train --help`. */
export const usageErrorLine = (commandPath: readonly string[], error: ParseError): string => {
  // The root command is named after `TASK`; each subcommand is a deno task of the same name.
  const path = commandPath.slice(1);
  const where = path.length ? path.join(" ") : "kappa";
  const help = path.length ? `${TASK} ${path.join(" ")} --help` : `${TASK} (lists the commands)`;
  return `${where}: ${problem(error)}; see ${help}`;
};

const didYouMean = (suggestions: readonly string[]) =>
  suggestions.length ? ` (did you mean ${suggestions.join(" or ")}?)` : "";

/** effect/cli's expectation text; a choice list `"a" | "b"` reads as `one of a, b`. */
const expected = (text: string) => {
  const t = text.replace(/^Expected:?\s*/, "").replace(/\.$/, "");
  const choices = t.split(" | ");
  return choices.length > 1 && choices.every((c) => /^"[^"]*"$/.test(c))
    ? `one of ${choices.map((c) => c.slice(1, -1)).join(", ")}`
    : t;
};

const problem = (e: ParseError): string => {
  switch (e._tag) {
    case "UnrecognizedOption":
      return `unknown flag ${e.option}${didYouMean(e.suggestions)}`;
    case "InvalidValue":
      // cli/flag_schema.ts's bounds say what the value must be in words of their own.
      if (/^(must|is) /.test(e.expected)) {
        return e.kind === "argument"
          ? `<${e.option}> ${e.value}: ${e.expected}`
          : `--${e.option} ${e.value}: ${e.expected}`;
      }
      if (e.kind === "argument") {
        return `<${e.option}>: "${e.value}" is not valid; expected ${expected(e.expected)}`;
      }
      return e.value === ""
        ? `--${e.option} needs a value (${expected(e.expected)})`
        : `--${e.option} ${e.value}: not valid; expected ${expected(e.expected)}`;
    case "MissingOption":
      return `--${e.option} is required`;
    case "MissingArgument":
      return `the argument <${e.argument}> is missing`;
    case "UnexpectedArgument": {
      const listed = e.arguments.slice(0, LISTED).map((a) => JSON.stringify(a)).join(", ");
      const more = e.arguments.length - LISTED;
      return `unexpected argument${e.arguments.length > 1 ? "s" : ""} ${listed}${
        more > 0 ? ` and ${more} more` : ""
      }`;
    }
    case "UnknownSubcommand":
      return `unknown command ${e.subcommand}${didYouMean(e.suggestions)}`;
    default:
      return e.message.split("\n")[0];
  }
};
