/**
 * The run folder's lock (`<run>/train.lock`): a second `train` on a folder in use is refused with a line
 * naming the holder, a lock left by a process that is gone is recovered (and said), the lock goes away
 * when the run ends however it ends, and eval / predict / export keep working on a folder in training.
 */
import { Exit } from "effect";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { cli } from "./cli_runner.ts";
import { tinyExperiment } from "./fixtures/tiny_experiment.ts";
import { experimentJson } from "../dsl/experiment.ts";
import { run } from "./run_helpers.ts";

const CAMVID_IMAGE = "../shared/data/camvid/images/val/0016E5_07959.jpg";
const LOCK = "train.lock";

/** The PID of a process that has exited (so certainly not holding anything). */
const deadPid = async () => {
  const child = new Deno.Command("true").spawn();
  await child.status;
  return child.pid;
};

const lockText = (pid: number, host: string) =>
  JSON.stringify({ pid, host, startedAt: "2026-01-01T00:00:00.000Z", token: "0123abcd" }) + "\n";

const trainSteps = (dir: string) =>
  readFileSync(join(dir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l))
    .filter((l) => l.kind === "train").map((l) => l.step as number);

Deno.test("run lock: a second train on the same --out is refused naming the holder; the first one's log stays whole", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-lock-"));
  const spec = join(dir, "long.json"), out = join(dir, "run");
  // Long enough that it is still training when the second one starts; it is stopped with Ctrl-C below.
  await writeFile(
    spec,
    experimentJson(tinyExperiment({ steps: 5000, logEvery: 1, checkpointEvery: 5000, evalEvery: 0 })),
  );
  const first = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli/main.ts", "train", spec, "--out", out, "--workers", "0"],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const firstDone = first.output();
  let exited = false;
  firstDone.then(() => (exited = true));
  try {
    // Wait (without a time limit) until the first run has logged a step: it is training.
    while (
      !existsSync(join(out, "metrics.jsonl")) ||
      !readFileSync(join(out, "metrics.jsonl"), "utf8").includes("\n")
    ) {
      assert(!exited, "the first train exited early");
      await new Promise((r) => setTimeout(r, 100));
    }
    const second = await cli("train", spec, "--out", out, "--workers", "0", "--steps", "3");
    assertEquals(second.code, 1, second.stdout + second.stderr);
    const lines = second.stderr.trim().split("\n");
    assertEquals(lines.length, 1, second.stderr);
    assert(lines[0].includes(`${out}: in use by another train (PID ${first.pid} on ${hostname()}`), lines[0]);

    first.kill("SIGINT");
    const result = await firstDone;
    assertEquals(result.code, 130, new TextDecoder().decode(result.stderr));
    // Only the first run's steps, each once and in order; its lock is gone with it.
    const steps = trainSteps(out);
    assertEquals(steps, steps.map((_, i) => i + 1));
    assert(!existsSync(join(out, LOCK)), "the lock outlived its run");
  } finally {
    if (!exited) {
      first.kill("SIGKILL");
      await firstDone;
    }
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("run lock: eval/predict/export read a locked run; a live holder refuses train; a dead one's lock is recovered and said; another host's is refused", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-lock-"));
  const out = join(dir, "run"), lock = join(out, LOCK);
  const holder = new Deno.Command("sleep", { args: ["600"] }).spawn();
  let holderAlive = true;
  try {
    const e = tinyExperiment({ steps: 4 });
    assert(Exit.isSuccess(await run(e, { out, skipFinalEval: false })));
    assert(!existsSync(lock), "a finished run left its lock");

    // A train holds the folder (a live process on this host).
    await writeFile(lock, lockText(holder.pid, hostname()));
    for (
      const args of [
        ["eval", out, "--workers", "0", "--limit", "2"],
        ["predict", out, CAMVID_IMAGE, "--out", join(dir, "pred")],
        ["export", out, join(dir, "m.onnx")],
      ]
    ) {
      const r = await cli(...args);
      assertEquals(r.code, 0, `${args[0]}: ${r.stderr}`);
    }
    assertEquals(readFileSync(lock, "utf8"), lockText(holder.pid, hostname()));
    const refused = await run(e, { out, resume: true });
    assert(Exit.isFailure(refused), "a second train ran on a locked folder");
    assert(String(refused.cause).includes(`PID ${holder.pid} on ${hostname()}`), String(refused.cause));
    assertEquals(readFileSync(lock, "utf8"), lockText(holder.pid, hostname()));

    // The holder dies without cleaning up: the next train recovers the lock and says so in one line.
    holder.kill("SIGKILL");
    await holder.status;
    holderAlive = false;
    const printed: string[] = [];
    assert(Exit.isSuccess(await run(e, { out, resume: true, print: (l) => printed.push(l) })));
    const said = printed.filter((l) => l.includes("stale lock"));
    assertEquals(said.length, 1, printed.join("\n"));
    assert(said[0].includes(`PID ${holder.pid} on ${hostname()}`) && said[0].includes("gone"), said[0]);
    assert(!existsSync(lock));

    // A lock from another machine cannot be checked from here: refused, saying what to do.
    await writeFile(lock, lockText(await deadPid(), "elsewhere.example"));
    const foreign = await run(e, { out, resume: true });
    assert(Exit.isFailure(foreign));
    const text = String(foreign.cause);
    assert(text.includes("on elsewhere.example") && text.includes(`remove ${lock}`), text);
    assert(existsSync(lock), "another host's lock was removed");
  } finally {
    if (holderAlive) {
      holder.kill("SIGKILL");
      await holder.status;
    }
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("run lock: released when the run fails (a changed experiment on --resume), recovered after a dead PID on a fresh folder", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-lock-"));
  try {
    const out = join(dir, "run");
    assert(Exit.isSuccess(await run(tinyExperiment({ steps: 2 }), { out })));
    const changed = await run(tinyExperiment({ steps: 2, seed: 5 }), { out, resume: true });
    assert(Exit.isFailure(changed) && String(changed.cause).includes("train.seed: 0 → 5"));
    assert(!existsSync(join(out, LOCK)), "a failed run left its lock");

    // A fresh folder holding only a dead process's lock: the run starts, says so, and leaves no lock.
    const fresh = join(dir, "fresh");
    await Deno.mkdir(fresh);
    const pid = await deadPid();
    await writeFile(join(fresh, LOCK), lockText(pid, hostname()));
    const printed: string[] = [];
    assert(
      Exit.isSuccess(await run(tinyExperiment({ steps: 2 }), { out: fresh, print: (l) => printed.push(l) })),
    );
    assert(printed.some((l) => l.includes("stale lock") && l.includes(`PID ${pid}`)), printed.join("\n"));
    assert(!existsSync(join(fresh, LOCK)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("run lock: a holder that died but was not reaped (a zombie, as a killed MPI rank whose mpirun exited first) is gone", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-lock-zombie-"));
  // `sleep 0` exits at once; its parent, exec'd into `sleep 30`, never reaps it: a zombie for 30 s.
  const parent = new Deno.Command("bash", {
    args: ["-c", "sleep 0 & echo $!; exec sleep 30"],
    stdout: "piped",
  }).spawn();
  try {
    const reader = parent.stdout.getReader();
    const pid = Number(new TextDecoder().decode((await reader.read()).value).trim());
    reader.releaseLock();
    const state = () => readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1][0];
    while (state() !== "Z") await new Promise((r) => setTimeout(r, 10));
    const out = join(dir, "run");
    await Deno.mkdir(out);
    await writeFile(join(out, LOCK), lockText(pid, hostname()));
    const printed: string[] = [];
    const r = await run(tinyExperiment({ steps: 1 }), { out, print: (l) => printed.push(l) });
    assert(Exit.isSuccess(r), String(r));
    assert(printed.some((l) => l.includes("stale lock") && l.includes(`PID ${pid}`)), printed.join("\n"));
  } finally {
    parent.kill("SIGKILL");
    await parent.status;
    await parent.stdout.cancel().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
});
