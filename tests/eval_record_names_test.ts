/**
 * An evaluation's record is named by what tells it from the run's own evaluation (split, mode, limit,
 * oracle, checkpoint step), so `eval --mode slide --limit 2` never overwrites the run's `eval-val.json`.
 */
import { Effect } from "effect";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assert, assertEquals } from "./assert.ts";
import { cli } from "./cli_runner.ts";
import { evalRecordName } from "../eval/eval_record.ts";
import { train } from "../train/train.ts";
import { tinyExperiment } from "./fixtures/tiny_experiment.ts";

Deno.test("evalRecordName: the run's own evaluation is eval-<split>.json; each difference adds a suffix", () => {
  const own = { split: "val", mode: "whole", runMode: "whole", oracle: false, step: 700, finalStep: 700 };
  assertEquals(evalRecordName(own), "eval-val.json");
  assertEquals(evalRecordName({ ...own, mode: "slide", limit: 10 }), "eval-val-slide-first10.json");
  assertEquals(evalRecordName({ ...own, oracle: true }), "eval-val-oracle.json");
  assertEquals(evalRecordName({ ...own, step: 500 }), "eval-val-step500.json");
  assertEquals(
    evalRecordName({ ...own, split: "test", mode: "slide", limit: 3, oracle: true, step: 4 }),
    "eval-test-slide-first3-oracle-step4.json",
  );
  // A run whose own mode is slide: whole-image evaluations are the different ones.
  assertEquals(evalRecordName({ ...own, runMode: "slide" }), "eval-val-whole.json");
});

Deno.test("eval --mode slide --limit 2 writes its own record and leaves the run's eval-val.json as it was", async () => {
  const root = await mkdtemp(join(tmpdir(), "kappa-record-names-"));
  try {
    const run = join(root, "run");
    await Effect.runPromise(train(tinyExperiment({ steps: 2 }), { out: run, workers: 0, print: () => {} }));
    const own = readFileSync(join(run, "eval-val.json"), "utf8");
    assertEquals(JSON.parse(own).images, 24);
    const r = await cli("eval", run, "--mode", "slide", "--limit", "2", "--workers", "0");
    assertEquals(r.code, 0, r.stderr);
    assert(r.stdout.includes(`wrote ${join(run, "eval-val-slide-first2.json")}`), r.stdout);
    assertEquals(readFileSync(join(run, "eval-val.json"), "utf8"), own);
    const slide = JSON.parse(readFileSync(join(run, "eval-val-slide-first2.json"), "utf8"));
    assertEquals([slide.split, slide.images, slide.mode, slide.step], ["val", 2, "slide", 2]);
    assert(!existsSync(join(run, "eval-val-first2.json")));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
