/**
 * Stopping `train` by a signal: Ctrl-C (SIGINT) and SIGTERM — what Slurm sends on `scancel` and at a time
 * limit, before its SIGKILL — both finish the current step, write a checkpoint at that step and exit with
 * status 130; `--resume` then ends bitwise where an uninterrupted run ends.
 */
import { Effect } from "effect";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { experimentJson } from "../dsl/experiment.ts";
import { tinyExperiment } from "./fixtures/tiny_experiment.ts";
import { train } from "../train/train.ts";
import { finalState, metrics } from "./run_helpers.ts";

/** Long enough to be signalled mid-training; periodic checkpoints far apart, so the stop's own one shows. */
const e = tinyExperiment({ steps: 150, checkpointEvery: 100, logEvery: 1 });

/** The last step metrics.jsonl records, or 0. */
const loggedStep = (dir: string): number => {
  const file = join(dir, "metrics.jsonl");
  if (!existsSync(file)) return 0;
  const lines = readFileSync(file, "utf8").trim().split("\n").filter((l) => l.startsWith("{"));
  return lines.length ? JSON.parse(lines.at(-1)!).step ?? 0 : 0;
};

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(`train: ${signal} mid-training writes a checkpoint at that step, exits 130, and --resume ends bitwise`, async () => {
    const root = await mkdtemp(join(Deno.cwd(), "runs", `signal-${signal}-`));
    try {
      const spec = join(root, "tiny.json");
      await writeFile(spec, experimentJson(e));
      const dir = join(root, "stopped");
      const args = [
        "run",
        "-A",
        "cli/main.ts",
        "train",
        spec,
        "--out",
        dir,
        "--threads",
        "1",
        "--workers",
        "0",
      ];
      const child = new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" }).spawn();
      // Signal once a few steps are logged (step 3 of 150: the run is mid-training whatever the machine's speed).
      while (loggedStep(dir) < 3) await new Promise((r) => setTimeout(r, 20));
      child.kill(signal);
      const out = await child.output();
      const stderr = new TextDecoder().decode(out.stderr).trim().split("\n");
      assertEquals(out.code, 130, stderr.join("\n"));
      const stop = /^stopped at step (\d+); checkpoint (\S+); continue with --resume$/.exec(stderr.at(-1)!);
      assert(stop !== null, `last line: ${stderr.at(-1)}`);
      const step = Number(stop[1]);
      assert(step >= 3 && step < e.train.steps, `stopped at step ${step}`);
      assertEquals(stop[2], join(dir, "checkpoints", `step-${String(step).padStart(6, "0")}.safetensors`));
      assert(existsSync(stop[2]), stop[2]);
      assert(!existsSync(join(dir, "eval-val.json")), "no final evaluation after a stop");

      const resumed = await new Deno.Command(Deno.execPath(), {
        args: [...args.slice(0, 4), spec, "--out", dir, "--resume", "--threads", "1", "--workers", "0"],
        stdout: "null",
        stderr: "piped",
      }).output();
      assertEquals(resumed.code, 0, new TextDecoder().decode(resumed.stderr));
      const whole = join(root, "whole");
      await Effect.runPromise(train(e, { out: whole, threads: 1, workers: 0, print: () => {} }));
      assertEquals(metrics(dir), metrics(whole));
      const [a, b] = [await finalState(dir), await finalState(whole)];
      assertEquals(Object.keys(a).sort(), Object.keys(b).sort());
      for (const name of Object.keys(b)) assertEquals(a[name].data, b[name].data, name);
      assertEquals(
        JSON.parse(readFileSync(join(dir, "eval-val.json"), "utf8")).mIoU,
        JSON.parse(readFileSync(join(whole, "eval-val.json"), "utf8")).mIoU,
      );
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
}
