/**
 * What `--resume` repairs in a run folder left by a killed or crashed run, and what it says about it:
 * a torn last line of metrics.jsonl (disk full), steps logged before the first checkpoint, temp files of
 * interrupted writes, a truncated newest checkpoint (moved aside, so rotation cannot keep it over a good
 * one); and every JSON file it reads names itself in errors. Each case is made directly (a truncated
 * file, a torn line, a temp file) on a folder of a run stopped at a known step.
 */
import { Effect, Exit } from "effect";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { appendFile, copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { tinyExperiment } from "./fixtures/tiny_experiment.ts";
import { metrics, run } from "./run_helpers.ts";
import { saveCheckpoint } from "../train/checkpoint.ts";
import { loadRun } from "../train/load_run.ts";

const e = tinyExperiment({ steps: 8, logEvery: 1, checkpointEvery: 4, keepCheckpoints: 2 });

/** The run that never stopped, to compare against (once per test file). */
let straightDir: Promise<string> | undefined;
const straight = (root: string) =>
  straightDir ??= (async () => {
    const dir = join(root, "straight");
    assert(Exit.isSuccess(await run(e, { out: dir })));
    return dir;
  })();

const withRoot = (name: string, body: (root: string) => Promise<void>) =>
  Deno.test(name, async () => {
    const root = await mkdtemp(join(tmpdir(), "kappa-resume-"));
    straightDir = undefined;
    try {
      await body(root);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

const resume = async (dir: string) => {
  const printed: string[] = [];
  const exit = await run(e, { out: dir, resume: true, print: (l) => printed.push(l) });
  assert(Exit.isSuccess(exit), `resume failed: ${Exit.isFailure(exit) ? exit.cause : ""}`);
  return printed;
};

withRoot(
  "resume: a torn last line of metrics.jsonl (disk full) is cut, said in one line, and the log ends as never stopping",
  async (root) => {
    const dir = join(root, "cut");
    await run(e, { out: dir, stopAfter: 4 });
    // The append of step 5's line died midway.
    await appendFile(join(dir, "metrics.jsonl"), '{"kind":"train","step":5,"epoch":0,"lr":0.0');
    const printed = await resume(dir);
    const said = printed.filter((l) => l.includes("torn last line"));
    assertEquals(said.length, 1, printed.join("\n"));
    assert(said[0].startsWith(join(dir, "metrics.jsonl")), said[0]);
    assertEquals(metrics(dir), metrics(await straight(root)));
  },
);

withRoot(
  "resume: a broken line inside metrics.jsonl, a corrupt meta.json or experiment.json: errors name the file and where",
  async (root) => {
    const dir = join(root, "bad");
    await run(e, { out: dir, stopAfter: 4 });
    const good = readFileSync(join(dir, "metrics.jsonl"), "utf8");
    const lines = good.split("\n");
    await writeFile(
      join(dir, "metrics.jsonl"),
      [lines[0], lines[1].slice(0, 10), ...lines.slice(2)].join("\n"),
    );
    const inside = await run(e, { out: dir, resume: true });
    assert(Exit.isFailure(inside));
    assert(String(inside.cause).includes(`${join(dir, "metrics.jsonl")}:2: not JSON`), String(inside.cause));
    await writeFile(join(dir, "metrics.jsonl"), good);

    const meta = readFileSync(join(dir, "meta.json"), "utf8");
    await writeFile(join(dir, "meta.json"), meta.slice(0, 40));
    const badMeta = await run(e, { out: dir, resume: true });
    assert(Exit.isFailure(badMeta));
    assert(
      /meta\.json: not JSON: .* at position \d+/.test(String(badMeta.cause)) &&
        String(badMeta.cause).includes(join(dir, "meta.json")),
      String(badMeta.cause),
    );
    await writeFile(join(dir, "meta.json"), meta);

    const spec = join(dir, "experiment.json");
    await writeFile(spec, readFileSync(spec, "utf8").slice(0, 30));
    const loaded = await Effect.runPromiseExit(loadRun(dir));
    assert(Exit.isFailure(loaded));
    assert(String(loaded.cause).includes(`${spec}: not JSON: `), String(loaded.cause));
  },
);

withRoot(
  "resume: killed before the first checkpoint, the steps it logged are dropped, not logged twice",
  async (root) => {
    const want = metrics(await straight(root));
    const dir = join(root, "early");
    await mkdir(dir);
    // What a run killed at step 3 leaves (checkpointEvery 4): spec, meta and three logged steps.
    for (const f of ["experiment.json", "meta.json"]) {
      await copyFile(
        join(await straight(root), f),
        join(dir, f),
      );
    }
    const logged = readFileSync(join(await straight(root), "metrics.jsonl"), "utf8").split("\n").slice(0, 3);
    await writeFile(join(dir, "metrics.jsonl"), logged.join("\n") + "\n");
    const printed = await resume(dir);
    assertEquals(metrics(dir).length, want.length);
    assertEquals(metrics(dir), want);
    assert(printed.some((l) => l.includes("from step 0")), printed.join("\n"));
  },
);

withRoot(
  "resume: temp files of killed writes are removed and counted in one line; a live writer's is kept",
  async (root) => {
    const dir = join(root, "temps");
    await run(e, { out: dir, stopAfter: 4 });
    const dead = new Deno.Command("true").spawn();
    await dead.status;
    const temps = [
      join(dir, "checkpoints", `step-000008.safetensors.tmp-${dead.pid}-0a1b2c3d`),
      join(dir, `meta.json.tmp-${dead.pid}-11223344`),
      join(dir, `metrics.jsonl.tmp-${dead.pid}-55667788`),
    ];
    for (const t of temps) await writeFile(t, "partial");
    // An eval of this run, writing its record right now (this test process is alive).
    const live = join(dir, `eval-val.json.tmp-${Deno.pid}-99aabbcc`);
    await writeFile(live, "{");
    const printed = await resume(dir);
    for (const t of temps) assert(!existsSync(t), `${t} is still there`);
    assert(existsSync(live), "a live writer's temp file was removed");
    const said = printed.filter((l) => l.includes("temp file"));
    assertEquals(said.length, 1, printed.join("\n"));
    assert(said[0].includes("removed 3 temp files"), said[0]);
    assertEquals(metrics(dir), metrics(await straight(root)));
  },
);

withRoot(
  "resume: a truncated newest checkpoint is said on stderr and moved aside; rotation keeps the good one",
  async (root) => {
    const dir = join(root, "trunc");
    await run(e, { out: dir, stopAfter: 4 });
    const ckpts = join(dir, "checkpoints");
    const good = readFileSync(join(ckpts, "step-000004.safetensors"));
    await writeFile(join(ckpts, "step-000006.safetensors"), good.subarray(0, good.length / 2));
    const printed = await resume(dir);
    const said = printed.filter((l) => l.includes("step-000006.safetensors"));
    assertEquals(said.length, 1, printed.join("\n"));
    assert(said[0].includes("moved aside") && said[0].includes(".corrupt"), said[0]);
    assert(printed.some((l) => l.includes("from step 4")), printed.join("\n"));
    // keepCheckpoints 2: the good step 4 and the final step 8 remain; the corrupt file is set apart.
    assertEquals(
      readdirSync(ckpts).filter((f) => f.startsWith("step-")).sort(),
      ["step-000004.safetensors", "step-000006.safetensors.corrupt", "step-000008.safetensors"],
    );
    assertEquals(metrics(dir), metrics(await straight(root)));
  },
);

withRoot(
  "checkpoint rotation: a corrupt step file is moved aside, never kept in place of a good one",
  async (root) => {
    const dir = join(root, "ckpts");
    const contents = { tensors: { w: { dtype: "F32" as const, shape: [2], data: Float32Array.of(1, 2) } } };
    await Effect.runPromise(saveCheckpoint(dir, 1, contents, { keepLast: 2 }));
    await Effect.runPromise(saveCheckpoint(dir, 2, contents, { keepLast: 2 }));
    await writeFile(join(dir, "step-000003.safetensors"), "truncated");
    const saved = await Effect.runPromise(saveCheckpoint(dir, 4, contents, { keepLast: 2 }));
    assertEquals(readdirSync(dir).sort(), [
      "step-000002.safetensors",
      "step-000003.safetensors.corrupt",
      "step-000004.safetensors",
    ]);
    assertEquals(saved.pruned, [join(dir, "step-000001.safetensors")]);
  },
);
