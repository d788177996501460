/** The `--name value` flags of the suites that write BENCHMARKS.md and RESULTS.md (`bench/`, `grids/`). */

/** A command-line flag's value (`--name value`), or undefined. */
export const flag = (name: string): string | undefined => {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
};
