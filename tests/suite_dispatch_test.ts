/**
 * `deno task bench <suite>` and `deno task grid <grid>` as a user meets them: `--help` / `-h` print the
 * suite's usage and run nothing, an unknown flag or a value out of bounds is one line, a grid asked of
 * `bench` names the command it moved to, and Ctrl-C during a grid's training ends with one line
 * (bench/main.ts, grids/main.ts, figures/command_line.ts).
 */
import { assert, assertEquals } from "./assert.ts";
import { Stopped } from "../train/train.ts";
import { SUITES } from "../bench/main.ts";
import { GRIDS } from "../grids/main.ts";
import { failureOutcome, type Program, taskCommand } from "../figures/command_line.ts";

const ENTRY: Record<Program, string> = { bench: "bench/main.ts", grid: "grids/main.ts" };
const ALL: Record<Program, string[]> = {
  bench: [
    "engine",
    "perf",
    "profile",
    "ab",
    "data",
    "gpu",
    "larvseg-bank",
    "scale",
    "frozen",
    "quantize",
    "quantize-isa",
    "web",
  ],
  grid: [
    "ablation",
    "larvseg",
    "xi-sources",
    "panoptic",
    "runs",
    "ranker-quality",
    "novel-classes",
    "status",
    "task",
  ],
};

/** A program as `deno task bench|grid` runs it; a suite that started running anyway is killed after a minute. */
const run = async (program: Program, ...args: string[]) => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ENTRY[program], ...args],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
};

Deno.test("bench and grid: every suite answers --help and -h with its usage and runs nothing", async () => {
  assertEquals(Object.keys(SUITES).sort(), [...ALL.bench].sort());
  assertEquals(Object.keys(GRIDS).sort(), [...ALL.grid].sort());
  // Were a grid to run, --report-only would read the runs and rewrite RESULTS.md; help returns first.
  const results = await Deno.readTextFile("RESULTS.md");
  for (const program of ["bench", "grid"] as const) {
    const TASK = taskCommand(program);
    for (const suite of ALL[program]) {
      for (const flag of ["--help", "-h"]) {
        const r = await run(program, suite, "--report-only", flag);
        assertEquals([r.code, r.stderr], [0, ""], `${suite} ${flag}`);
        assert(r.stdout.startsWith(`usage: ${TASK} ${suite}`), `${suite} ${flag}: ${r.stdout}`);
        // Each flag the usage shows has a line of its own saying what it does.
        for (const f of r.stdout.replaceAll(TASK, "").match(/--[a-z-]+/g) ?? []) {
          assert(
            new RegExp(`^  ${f}(?:[= ]\\S+)? {2,}\\S`, "m").test(r.stdout),
            `${suite}: ${f} undescribed:\n${r.stdout}`,
          );
        }
      }
    }
    const all = await run(program, "--help");
    assertEquals(all.code, 0);
    for (const suite of ALL[program]) assert(all.stdout.includes(`  ${suite} `), all.stdout);
  }
  assertEquals(await Deno.readTextFile("RESULTS.md"), results);
});

Deno.test("bench and grid: an unknown flag, a bad value or an unknown suite is one line and runs nothing", async () => {
  const TASK = taskCommand("bench"), GRID = taskCommand("grid");
  const cases: [Program, string[], string][] = [
    ["grid", ["ablation", "--bogus"], `grid ablation: unknown flag --bogus; see ${GRID} ablation --help`],
    [
      "grid",
      ["ablation", "--threads", "0"],
      `grid ablation: --threads 0: must be an integer from 1 to ${
        Math.min(256, 4 * navigator.hardwareConcurrency)
      } (4 × the CPU cores, at most 256); see ${GRID} ablation --help`,
    ],
    [
      "grid",
      ["ablation", "--grid", "nope"],
      `grid ablation: --grid nope: expected one of scratch, pretrained; see ${GRID} ablation --help`,
    ],
    ["grid", ["ablation", "--seeds"], `grid ablation: --seeds needs a value; see ${GRID} ablation --help`],
    [
      "grid",
      ["panoptic", "diagnose"],
      `grid panoptic: diagnose needs a run folder: panoptic diagnose <run-dir>; see ${GRID} panoptic --help`,
    ],
    [
      "bench",
      ["larvseg-bank", "--steps", "-5"],
      `bench larvseg-bank: --steps -5: must be an integer from 1 to 10,000,000; see ${TASK} larvseg-bank --help`,
    ],
    ["bench", ["engine", "extra"], `bench engine: unexpected argument "extra"; see ${TASK} engine --help`],
    ["bench", ["quantize"], `bench quantize: the argument <run-dir> is missing; see ${TASK} quantize --help`],
    ["bench", ["perf", "--quick=1"], `bench perf: --quick takes no value; see ${TASK} perf --help`],
    ["bench", ["nosuch"], `bench: unknown suite nosuch; see ${TASK} --help`],
    ["bench", [], `bench: which suite? see ${TASK} --help`],
    ["grid", ["ablations"], `grid: unknown grid ablations; see ${GRID} --help`],
    ["grid", [], `grid: which grid? see ${GRID} --help`],
    // The grids were bench suites: bench names the command they moved to, and runs nothing.
    [
      "bench",
      ["larvseg", "--seeds", "3"],
      `bench larvseg: it moved; run: ${GRID} larvseg --seeds 3`,
    ],
  ];
  for (const [program, args, line] of cases) {
    const r = await run(program, ...args);
    assertEquals([r.code, r.stdout, r.stderr], [2, "", line + "\n"], args.join(" "));
  }
});

Deno.test("grid: a grid stopped by Ctrl-C (train's Stopped) ends with one line and status 130", () => {
  const stopped = new Stopped({
    step: 12,
    checkpoint: "runs/ablation/x/checkpoints/step-000012.safetensors",
  });
  assertEquals(failureOutcome("grid", "ablation", stopped), {
    lines: [
      "grid ablation: stopped at step 12; checkpoint runs/ablation/x/checkpoints/step-000012.safetensors; " +
      "continue with --resume",
    ],
    code: 130,
  });
  // Any other typed error is one line too; a programming error keeps its stack.
  const tagged = Object.assign(new Error("runs/x: no checkpoint\nmore"), { _tag: "RunFolderError" });
  assertEquals(failureOutcome("bench", "quantize", tagged), {
    lines: ["bench quantize: runs/x: no checkpoint"],
    code: 1,
  });
  assertEquals(failureOutcome("bench", "quantize", new TypeError("x is undefined")), undefined);
});
