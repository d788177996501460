/**
 * `deno task bench parity [--no-write]`: kappa against the official RankSeg and kMaX-DeepLab code (and
 * LarvSeg's equations by hand), the table of every check written to RESULTS.md's "Parity with the
 * official implementations" section (bench/parity/). Needs a Python with torch, numpy and scipy
 * (`.venv-ci` from `.ci/setup`, or `$KAPPA_PARITY_PYTHON`). A check beyond its tolerance makes it exit 1,
 * naming the component, and leaves RESULTS.md as it was.
 */
import { findPython } from "./parity/reference_data.ts";
import { describeFailures, runParity } from "./parity/run.ts";
import { parityReport, SECTION } from "./parity/report.ts";
import { recordSection } from "./markdown.ts";
import { machine } from "./machine.ts";

export const main = async (args: readonly string[]): Promise<void> => {
  const unknown = args.filter((a) => a !== "--no-write");
  if (unknown.length) {
    console.error(`bench parity: unknown argument ${unknown[0]} (usage: bench parity [--no-write])`);
    Deno.exit(2);
  }
  const { python, reason } = await findPython();
  if (!python) {
    console.error(`bench parity: ${reason}`);
    Deno.exit(1);
  }
  console.log(`bench parity: official code with ${python}…`);
  const run = await runParity(python);
  const body = parityReport(run, { cpu: machine().cpu, date: new Date().toISOString().slice(0, 10) });
  console.log(body);
  const failures = describeFailures(run.rows);
  if (failures.length) {
    console.error(`bench parity: ${failures.length} check(s) failed:\n  ${failures.join("\n  ")}`);
    Deno.exit(1);
  }
  if (!args.includes("--no-write")) {
    await recordSection("RESULTS.md", SECTION, body, 1);
    console.log(`bench parity: ${run.rows.length} checks pass; RESULTS.md "${SECTION}" written`);
  }
};
