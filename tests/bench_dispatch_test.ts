/**
 * `deno task bench <suite>` as a user meets it: `--help` / `-h` print the suite's usage and run nothing,
 * an unknown flag or a value out of bounds is one line, and Ctrl-C during a grid's training ends with one
 * line (bench/main.ts and bench/suite_args.ts).
 */
import { assert, assertEquals } from "./assert.ts";
import { Stopped } from "../train/train.ts";
import { SUITES } from "../bench/main.ts";
import { failureOutcome } from "../bench/suite_args.ts";

const TASK = "npx --yes deno@2.9.6 task bench";
const ALL = [
  "engine",
  "perf",
  "profile",
  "data",
  "ablation",
  "gpu",
  "larvseg",
  "larvseg-bank",
  "panoptic",
  "quantize",
];

/** `bench/main.ts` as `deno task bench` runs it; a suite that started running anyway is killed after a minute. */
const bench = async (...args: string[]) => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "bench/main.ts", ...args],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
};

Deno.test("bench: every suite answers --help and -h with its usage and runs nothing", async () => {
  assertEquals(Object.keys(SUITES).sort(), [...ALL].sort());
  for (const suite of ALL) {
    for (const flag of ["--help", "-h"]) {
      const r = await bench(suite, "--some-flag-before", flag);
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
  const all = await bench("--help");
  assertEquals(all.code, 0);
  for (const suite of ALL) assert(all.stdout.includes(`  ${suite} `), all.stdout);
});

Deno.test("bench: an unknown flag, a bad value or an unknown suite is one line and runs nothing", async () => {
  const cases: [string[], string][] = [
    [["ablation", "--bogus"], `bench ablation: unknown flag --bogus; see ${TASK} ablation --help`],
    [
      ["ablation", "--threads", "0"],
      `bench ablation: --threads 0: must be an integer from 1 to ${
        Math.min(256, 4 * navigator.hardwareConcurrency)
      } (4 × the CPU cores, at most 256); see ${TASK} ablation --help`,
    ],
    [
      ["ablation", "--grid", "nope"],
      `bench ablation: --grid nope: expected one of scratch, pretrained; see ${TASK} ablation --help`,
    ],
    [["ablation", "--seeds"], `bench ablation: --seeds needs a value; see ${TASK} ablation --help`],
    [
      ["larvseg-bank", "--steps", "-5"],
      `bench larvseg-bank: --steps -5: must be an integer from 1 to 10,000,000; see ${TASK} larvseg-bank --help`,
    ],
    [["engine", "extra"], `bench engine: unexpected argument "extra"; see ${TASK} engine --help`],
    [["quantize"], `bench quantize: the argument <run-dir> is missing; see ${TASK} quantize --help`],
    [["perf", "--quick=1"], `bench perf: --quick takes no value; see ${TASK} perf --help`],
    [["nosuch"], `bench: unknown suite nosuch; see ${TASK} --help`],
    [[], `bench: which suite? see ${TASK} --help`],
  ];
  for (const [args, line] of cases) {
    const r = await bench(...args);
    assertEquals([r.code, r.stdout, r.stderr], [2, "", line + "\n"], args.join(" "));
  }
});

Deno.test("bench: a grid stopped by Ctrl-C (train's Stopped) ends with one line and status 130", () => {
  const stopped = new Stopped({
    step: 12,
    checkpoint: "runs/ablation/x/checkpoints/step-000012.safetensors",
  });
  assertEquals(failureOutcome("ablation", stopped), {
    lines: [
      "bench ablation: stopped at step 12; checkpoint runs/ablation/x/checkpoints/step-000012.safetensors; " +
      "continue with --resume",
    ],
    code: 130,
  });
  // Any other typed error is one line too; a programming error keeps its stack.
  const tagged = Object.assign(new Error("runs/x: no checkpoint\nmore"), { _tag: "RunFolderError" });
  assertEquals(failureOutcome("quantize", tagged), {
    lines: ["bench quantize: runs/x: no checkpoint"],
    code: 1,
  });
  assertEquals(failureOutcome("quantize", new TypeError("x is undefined")), undefined);
});
