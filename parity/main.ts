/**
 * `deno task parity [--no-write]`: kappa against the official RankSeg and kMaX-DeepLab code (and
 * LarvSeg's equations by hand), the table of every check written to RESULTS.md's "Parity with the
 * official implementations" section (parity/). Needs a Python with torch, numpy and scipy
 * (`.venv-ci` from `.ci/setup`, or `$KAPPA_PARITY_PYTHON`). A check beyond its tolerance makes it exit 1,
 * naming the component, and leaves RESULTS.md as it was.
 */
import { findPython } from "./reference_data.ts";
import { describeFailures, runParity } from "./run.ts";
import { parityReport, SECTION } from "./report.ts";
import { recordSection } from "../figures/markdown.ts";
import { thisCpu } from "../figures/cpu.ts";

const USAGE = `usage: npx --yes deno@2.9.6 task parity [--no-write]

Runs the official RankSeg and kMaX-DeepLab code (../shared/reference, through its shims) and kappa's layers
on the same weights and inputs, compares outputs, losses and gradients (and LarvSeg's equations by hand),
prints the table and writes it into RESULTS.md's "Parity with the official implementations" section.
Needs a Python with torch, numpy and scipy (.venv-ci from .ci/setup, or $KAPPA_PARITY_PYTHON). A check beyond
its tolerance exits 1, naming the component, and leaves RESULTS.md as it was.

  --no-write   print the table only`;

export const main = async (args: readonly string[]): Promise<void> => {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return;
  }
  const unknown = args.filter((a) => a !== "--no-write");
  if (unknown.length) {
    console.error(`parity: unknown argument ${unknown[0]}; see npx --yes deno@2.9.6 task parity --help`);
    Deno.exit(2);
  }
  const { python, reason } = await findPython();
  if (!python) {
    console.error(`parity: ${reason}`);
    Deno.exit(1);
  }
  console.log(`parity: official code with ${python}…`);
  const run = await runParity(python);
  const body = parityReport(run, { cpu: thisCpu(), date: new Date().toISOString().slice(0, 10) });
  console.log(body);
  const failures = describeFailures(run.rows);
  if (failures.length) {
    console.error(`parity: ${failures.length} check(s) failed:\n  ${failures.join("\n  ")}`);
    Deno.exit(1);
  }
  if (!args.includes("--no-write")) {
    await recordSection("RESULTS.md", SECTION, body, 1);
    console.log(`parity: ${run.rows.length} checks pass; RESULTS.md "${SECTION}" written`);
  }
};

if (import.meta.main) await main(Deno.args);
