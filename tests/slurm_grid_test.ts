/**
 * Grids on Slurm (grids/slurm/): `--slurm` submits a grid's unfinished runs as one job array and its
 * report as a job after it; each task trains one run with resume semantics and logs into its run folder;
 * `grid status` lists the runs. The tests that submit jobs need a cluster (`.ci/setup-slurm` starts a
 * one-node one); without one they skip and say why in their names, and with KAPPA_EXPECT_SLURM=1 (CI)
 * they fail instead. The others — no sbatch on PATH, flags, the array task outside Slurm, status's
 * states, the generic grid's inputs — run everywhere.
 */
import { Effect } from "effect";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assert, assertEquals } from "./assert.ts";
import { type Experiment, experimentJson, withOverrides } from "../dsl/experiment.ts";
import { tinyExperiment } from "./fixtures/tiny_experiment.ts";
import { train } from "../train/train.ts";
import { finalState, metrics } from "./run_helpers.ts";
import { cancelJobs, slurmTestName, slurmUnavailable, waitForJobs } from "./slurm_cluster.ts";
import { GRIDS } from "../grids/main.ts";
import { usageText } from "../figures/command_line.ts";
import { shellWords, withoutSlurmFlags } from "../grids/slurm/slurm_flags.ts";
import { type Manifest, writeManifest } from "../grids/slurm/manifest.ts";
import { arraySbatchArgs, commonSbatchArgs, reportSbatchArgs, shellQuote } from "../grids/slurm/submit.ts";
import { runFacts, runState } from "../grids/slurm/status.ts";
import { experimentFiles } from "../grids/experiments_grid.ts";

const FILE = "tests/slurm_grid_test.ts";
const unavailable = await slurmUnavailable(FILE);
const dec = new TextDecoder();

/** `deno task grid <args>` as a subprocess (in the repository, as deno task runs it). */
const grid = async (args: readonly string[], env: Record<string, string> = {}) => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "grids/main.ts", ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
};

/** The submission's job ids, from the line `--slurm` prints. */
const jobIds = (stdout: string) => ({
  array: /as array job (\d+)/.exec(stdout)?.[1],
  report: /report job (\d+)/.exec(stdout)?.[1],
});

const lines = (file: string) => readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "");
/** A log line without its leading ISO time. */
const untimed = (line: string) => line.replace(/^\d{4}-\d\d-\d\dT[\d:.]+Z /, "");

/** A scratch folder with the experiment written as JSON (a spec is data), and a unique grid name. */
const scratch = async (e: Experiment, stem: string) => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-slurm-"));
  const spec = join(dir, `${stem}.json`);
  await writeFile(spec, experimentJson(e));
  const name = `test-${dir.split("-").at(-1)}`;
  return { dir, spec, name, runs: join("runs", `grid-${name}`) };
};

const mIoU = (record: string) => JSON.parse(readFileSync(record, "utf8")).mIoU as number;
const std = (xs: number[]) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
};

Deno.test("grid --slurm without sbatch on PATH: one line, exit 1, nothing submitted or written", async () => {
  const s = await scratch(tinyExperiment(), "tiny");
  try {
    for (const args of [["runs", s.spec, "--name", s.name], ["ablation"], ["panoptic", "--seeds", "1"]]) {
      const r = await grid([...args, "--slurm"], { PATH: "/nonexistent" });
      assertEquals(r.code, 1, r.stderr);
      assertEquals(r.stderr.trim().split("\n"), [
        `grid ${
          args[0]
        }: --slurm: sbatch is not on PATH (no Slurm client here); submit from a machine with ` +
        "Slurm (a login node), or leave out --slurm to train the runs here",
      ]);
      assertEquals(r.stdout, "");
    }
    assert(!existsSync(s.runs), `${s.runs} was written`);
  } finally {
    await rm(s.dir, { recursive: true, force: true });
  }
});

Deno.test("grid: a Slurm flag without --slurm, and --slurm with --report-only, are one line each (exit 1)", async () => {
  const s = await scratch(tinyExperiment(), "tiny");
  try {
    const a = await grid(["runs", s.spec, "--name", s.name, "--partition", "gpu"]);
    assertEquals([a.code, a.stderr.trim()], [1, "grid runs: --partition needs --slurm"]);
    const b = await grid(["larvseg", "--slurm", "--report-only"]);
    assertEquals([b.code, b.stderr.trim()], [
      1,
      "grid larvseg: --slurm and --report-only: give one (every submission ends with a report job)",
    ]);
    const c = await grid(["panoptic", "step", "--slurm"]);
    assertEquals(c.code, 2);
    assert(c.stderr.includes("--slurm submits the grid; step runs here: leave out --slurm"), c.stderr);
    assert(!existsSync(s.runs));
  } finally {
    await rm(s.dir, { recursive: true, force: true });
  }
});

Deno.test("grid --help: every grid documents --slurm and its passthrough flags", () => {
  for (const name of ["ablation", "larvseg", "panoptic", "runs"]) {
    const text = usageText("grid", name, GRIDS[name]);
    for (
      const f of [
        "--slurm ",
        "--partition P",
        "--time T",
        "--account A",
        "--mem-per-cpu M",
        "--max-parallel N",
        '--sbatch-args="…"',
        "--threads T",
      ]
    ) assert(text.includes(f), `${name} --help lacks ${f}`);
  }
  assert(usageText("grid", "runs", GRIDS.runs).includes("<experiment...>"));
});

Deno.test("--sbatch-args splits as a shell does; the sbatch options of each job; the report job's arguments drop the Slurm flags", () => {
  assertEquals(shellWords(`--qos=long  --comment="two words" --x='a "b"'`), [
    "--qos=long",
    "--comment=two words",
    '--x=a "b"',
  ]);
  assertEquals(shellWords("  "), []);
  // What every job gets, what the array and the report get on top.
  const o = {
    partition: "cpu",
    time: "2:00:00",
    account: "lab",
    memPerCpu: "4G",
    maxParallel: 3,
    sbatchArgs: ["--qos=long"],
    threads: 4,
  };
  assertEquals(commonSbatchArgs(o, "/repo"), [
    "--chdir=/repo",
    "--partition=cpu",
    "--time=2:00:00",
    "--account=lab",
    "--mem-per-cpu=4G",
    "--cpus-per-task=4",
    "--qos=long",
  ]);
  assertEquals(commonSbatchArgs({ sbatchArgs: [], threads: 1 }, "/repo"), [
    "--chdir=/repo",
    "--cpus-per-task=1",
  ]);
  assertEquals(arraySbatchArgs("ablation", 12, o, "runs/ablation/slurm/t"), [
    "--job-name=kappa-ablation",
    "--array=0-11%3",
    "--output=runs/ablation/slurm/t/%A_%a.out",
  ]);
  assertEquals(reportSbatchArgs("ablation", ["41", "37"], "runs/ablation/slurm/t"), [
    "--job-name=kappa-ablation-report",
    "--dependency=afterany:41:37",
    "--output=runs/ablation/slurm/t/report-%j.out",
  ]);
  assertEquals(reportSbatchArgs("runs", [], "f").some((a) => a.startsWith("--dependency")), false);
  assertEquals(shellQuote("it's a/b"), `'it'\\''s a/b'`);
  assertEquals(
    withoutSlurmFlags([
      "a.ts",
      "--seeds",
      "2",
      "--slurm",
      "--partition",
      "p",
      "--time",
      "1:00:00",
      "--max-parallel",
      "3",
      "--sbatch-args=--qos=x",
      "--threads",
      "2",
    ]),
    ["a.ts", "--seeds", "2", "--threads", "2"],
  );
});

Deno.test("the generic grid's inputs: files, folders, globs, each once; a missing one or a shared stem is one line", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-grid-inputs-"));
  try {
    await mkdir(join(dir, "b"));
    for (const f of ["a1.json", "a2.ts", "notes.md", "b/a1.json", "b/c.json"]) {
      await writeFile(join(dir, f), "{}");
    }
    assertEquals(experimentFiles([join(dir, "a*"), join(dir, "a1.json")]), [
      join(dir, "a1.json"),
      join(dir, "a2.ts"),
    ]);
    assertEquals(experimentFiles([dir]), [join(dir, "a1.json"), join(dir, "a2.ts")]);
    const problem = (inputs: string[]) => {
      try {
        experimentFiles(inputs);
        return undefined;
      } catch (e) {
        return (e as Error).message;
      }
    };
    assertEquals(problem([join(dir, "zz.json")]), `${join(dir, "zz.json")}: no such file or folder`);
    assertEquals(problem([join(dir, "z*")]), `${join(dir, "z*")}: no experiment file matches`);
    assertEquals(
      problem([dir, join(dir, "b")]),
      `${join(dir, "a1.json")} and ${
        join(dir, "b/a1.json")
      }: two experiments named a1 (their runs would share ` +
        "folders); run them as two grids (--name)",
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("grid status: finished (metric), running (step), failed (the log's last line), pending (queued or not)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-status-"));
  try {
    const run = (name: string, job?: string) => ({
      spec: "x.json",
      dir: join(dir, name),
      record: join(dir, name, "eval-val.json"),
      ...(job ? { job } : {}),
    });
    const [finished, running, failed, queued, notQueued] = [
      run("finished", "7_0"),
      run("running", "7_1"),
      run("failed", "7_2"),
      run("queued", "7_3"),
      run("not-queued"),
    ];
    for (const r of [finished, running, failed]) await mkdir(r.dir);
    await writeFile(finished.record, JSON.stringify({ units: "percent", mIoU: 12.345 }));
    await writeFile(join(running.dir, "experiment.json"), JSON.stringify({ train: { steps: 20 } }));
    await writeFile(
      join(running.dir, "metrics.jsonl"),
      `${JSON.stringify({ kind: "train", step: 6 })}\n${
        JSON.stringify({ kind: "train", step: 7 })
      }\n{"kind":"tr`,
    );
    await writeFile(
      join(failed.dir, "slurm-7_2.log"),
      "2026-01-01T00:00:00.000Z task 2\n2026-01-01T00:00:01.000Z failed: boom\n",
    );
    await writeFile(join(running.dir, "train.log"), "2026-01-01T00:00:00.000Z checkpoint step-000004\n");
    const q = new Map([
      ["7_1", { state: "RUNNING", reason: "None" }],
      ["7_3", { state: "PENDING", reason: "JobArrayTaskLimit" }],
    ]);
    const states = [finished, running, failed, queued, notQueued].map((r) => runState(runFacts(r, dir, q)));
    assertEquals(states, [
      { _tag: "finished", metric: "mIoU 12.35" },
      { _tag: "running", step: 7, steps: 20 },
      { _tag: "failed", line: "failed: boom" },
      { _tag: "pending", why: "queued (pending: JobArrayTaskLimit)" },
      { _tag: "pending", why: "not queued: submit the grid again to train it" },
    ]);
    // Out of the queue, a started run that did not finish is failed, with its log's last line.
    assertEquals(runState(runFacts(running, dir, new Map())), {
      _tag: "failed",
      line: "checkpoint step-000004",
    });
    await rm(join(running.dir, "train.log"));
    assertEquals(runState(runFacts(running, dir, new Map())), {
      _tag: "failed",
      line: "stopped at step 7 (no log left)",
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("grid task outside Slurm: trains its run into the folder with a log there; a second time it has nothing to do", async () => {
  const s = await scratch(tinyExperiment(), "tiny");
  try {
    const dir = join(s.runs, "tiny-s1");
    const manifest: Manifest = {
      grid: "runs",
      args: [s.spec],
      cwd: Deno.cwd(),
      deno: Deno.execPath(),
      created: new Date().toISOString(),
      threads: 1,
      workers: 0,
      runs: [{ spec: s.spec, seed: 1, dir, record: join(dir, "eval-val.json") }],
      tasks: [0],
    };
    const file = join(s.dir, "manifest.json");
    await writeManifest(file, manifest);
    const first = await grid(["task", file, "0"]);
    assertEquals(first.code, 0, first.stderr);
    const log = join(dir, "slurm-local_0.log");
    assertEquals(untimed(lines(log).at(-1)!), `finished: ${join(dir, "eval-val.json")}`);
    assertEquals(JSON.parse(readFileSync(join(dir, "experiment.json"), "utf8")).train.seed, 1);
    const again = await grid(["task", file, "0"]);
    assertEquals(again.code, 0, again.stderr);
    assertEquals(
      untimed(lines(log).at(-1)!),
      `finished already (${join(dir, "eval-val.json")}); nothing to do`,
    );
    const bad = await grid(["task", file, "3"]);
    assertEquals([bad.code, bad.stderr.trim()], [1, `grid task: ${file} has tasks 0-0, not 3`]);
  } finally {
    await rm(s.dir, { recursive: true, force: true });
    await rm(s.runs, { recursive: true, force: true });
  }
});

Deno.test({
  name: slurmTestName(
    "slurm: a 2-task array trains both seeds, its report job writes the grid's part, a re-submit only reports",
    unavailable,
  ),
  ignore: unavailable !== undefined,
  fn: async () => {
    const s = await scratch(tinyExperiment(), "tiny");
    const jobs: string[] = [];
    try {
      const report = join(s.dir, "RESULTS.md");
      await writeFile(report, "# Another part\n\nkept as it is\n");
      const args = ["runs", s.spec, "--name", s.name, "--seeds", "2", "--threads", "1", "--workers", "0"];
      const r = await grid([...args, "--report", report, "--slurm"]);
      assertEquals(r.code, 0, r.stderr);
      const { array, report: reportJob } = jobIds(r.stdout);
      assert(array && reportJob, r.stdout);
      jobs.push(array, reportJob);
      assert(
        r.stdout.startsWith(
          `grid runs: 2 runs: 0 finished, 0 still queued by an earlier submission, 2 submitted as array job ${array} (tasks 0-1, 1 CPU each); report job ${reportJob} after ${array} (afterany)`,
        ),
        r.stdout,
      );
      await waitForJobs(jobs);

      const records = [0, 1].map((seed) => {
        const dir = join(s.runs, `tiny-s${seed}`);
        const log = join(dir, `slurm-${array}_${seed}.log`);
        assertEquals(untimed(lines(log).at(-1)!), `finished: ${join(dir, "eval-val.json")}`);
        return JSON.parse(readFileSync(join(dir, "eval-val.json"), "utf8")) as { mIoU: number; mAP: number };
      });
      const values = records.map((r) => r.mIoU);
      const text = readFileSync(report, "utf8");
      assert(text.startsWith("# Another part\n\nkept as it is\n\n# Grid " + s.name + "\n"), text);
      // The table's row (deno fmt pads its cells).
      const cells = text.split("\n").map((l) => l.split("|").slice(1, -1).map((c) => c.trim()))
        .find((c) => c[0] === "tiny");
      assertEquals(cells, [
        "tiny",
        `\`${s.spec}\``,
        "8",
        "mIoU",
        `${((values[0] + values[1]) / 2).toFixed(2)} ± ${std(values).toFixed(2)}`,
        values.map((v) => v.toFixed(2)).join(", "),
        "2/2",
        ((records[0].mAP + records[1].mAP) / 2).toFixed(2),
      ]);
      assert(
        existsSync(join(s.dir, "results", `grid-${s.name}.svg`)),
        "the chart in results/ beside the report",
      );

      const status = await grid(["status", s.name]);
      assertEquals(status.code, 0, status.stderr);
      const listed = status.stdout.trim().split("\n");
      assert(
        listed[0].startsWith(`grid runs: 2 runs: 2 finished, 0 running, 0 failed, 0 pending`),
        listed[0],
      );
      for (const seed of [0, 1]) {
        assert(
          listed.some((l) =>
            /^\s+finished\s+/.test(l) && l.includes(`tiny-s${seed}`) && l.includes(`${array}_${seed}`) &&
            l.endsWith(`mIoU ${values[seed].toFixed(2)}`)
          ),
          status.stdout,
        );
      }

      const again = await grid([...args, "--report", report, "--slurm"]);
      assertEquals(again.code, 0, again.stderr);
      const second = jobIds(again.stdout);
      assertEquals(second.array, undefined, again.stdout);
      assert(second.report, again.stdout);
      jobs.push(second.report);
      assert(
        again.stdout.startsWith(
          `grid runs: 2 runs: 2 finished, 0 still queued by an earlier submission, 0 submitted; report job ${second.report}\n`,
        ),
        again.stdout,
      );
      await waitForJobs([second.report]);
    } finally {
      await cancelJobs(jobs);
      await rm(s.dir, { recursive: true, force: true });
      await rm(s.runs, { recursive: true, force: true });
    }
  },
});

/** The last step a run's metrics.jsonl records, or 0. */
const loggedStep = (dir: string): number => {
  const file = join(dir, "metrics.jsonl");
  if (!existsSync(file)) return 0;
  const last = readFileSync(file, "utf8").trim().split("\n").filter((l) => l.endsWith("}")).at(-1);
  return last ? JSON.parse(last).step ?? 0 : 0;
};

Deno.test({
  name: slurmTestName(
    "slurm: status while running and pending; scancel stops a task with a checkpoint; a re-submit resumes it bitwise",
    unavailable,
  ),
  ignore: unavailable !== undefined,
  fn: async () => {
    const e = tinyExperiment({ steps: 300, checkpointEvery: 100, logEvery: 1 });
    const s = await scratch(e, "long");
    const jobs: string[] = [];
    try {
      const args = [
        "runs",
        s.spec,
        "--name",
        s.name,
        "--seeds",
        "2",
        "--threads",
        "1",
        "--workers",
        "0",
        "--slurm",
      ];
      const r = await grid([...args, "--max-parallel", "1"]);
      assertEquals(r.code, 0, r.stderr);
      const { array, report } = jobIds(r.stdout);
      assert(array && report, r.stdout);
      jobs.push(array, report);
      const [dir0, dir1] = [join(s.runs, "long-s0"), join(s.runs, "long-s1")];
      const deadline = Date.now() + 60_000;
      while (loggedStep(dir0) < 10) {
        assert(Date.now() < deadline, "task 0 did not start training");
        await new Promise((r) => setTimeout(r, 50));
      }
      const during = (await grid(["status", s.name])).stdout.trim().split("\n");
      const row = (d: string) => during.find((l) => l.includes(`${d} `))!;
      assert(/^\s+running\s/.test(row(dir0)) && / step \d+ of 300$/.test(row(dir0)), during.join("\n"));
      assert(row(dir0).includes(`${array}_0`), row(dir0));
      assert(/^\s+pending\s/.test(row(dir1)) && row(dir1).includes("queued (pending: "), during.join("\n"));

      const cancel = await new Deno.Command("scancel", { args: [array] }).output();
      assertEquals(cancel.code, 0, dec.decode(cancel.stderr));
      await waitForJobs(jobs);
      // SIGTERM (scancel's, as a time limit's) made the task checkpoint at the step it had reached.
      const stopped = /stopped at step (\d+); checkpoint (\S+); submit the grid again to resume$/.exec(
        lines(join(dir0, `slurm-${array}_0.log`)).at(-1)!,
      );
      assert(stopped, lines(join(dir0, `slurm-${array}_0.log`)).at(-1));
      const step = Number(stopped[1]);
      assert(step >= 10 && step < 300, `stopped at ${step}`);
      assert(existsSync(stopped[2]) && !existsSync(join(dir0, "eval-val.json")));
      const after = (await grid(["status", s.name])).stdout.trim().split("\n");
      assert(
        after.some((l) =>
          /^\s+failed\s/.test(l) && l.includes(dir0) && l.endsWith("submit the grid again to resume")
        ),
        after.join("\n"),
      );
      assert(
        after.some((l) =>
          /^\s+pending\s/.test(l) && l.includes(dir1) &&
          l.endsWith("not queued: submit the grid again to train it")
        ),
        after.join("\n"),
      );

      const again = await grid(args);
      assertEquals(again.code, 0, again.stderr);
      const second = jobIds(again.stdout);
      assert(second.array && second.report, again.stdout);
      jobs.push(second.array, second.report);
      assert(
        again.stdout.includes("0 finished, 0 still queued by an earlier submission, 2 submitted"),
        again.stdout,
      );
      await waitForJobs(jobs);
      const log0 = lines(join(dir0, `slurm-${second.array}_0.log`)).map(untimed);
      assert(log0.includes(`resuming ${dir0} from step ${step}`), log0.join("\n"));
      assertEquals(log0.at(-1), `finished: ${join(dir0, "eval-val.json")}`);

      const whole = join(s.dir, "whole");
      await Effect.runPromise(
        train(withOverrides(e, undefined, 0), { out: whole, threads: 1, workers: 0, print: () => {} }),
      );
      assertEquals(metrics(dir0), metrics(whole));
      const [a, b] = [await finalState(dir0), await finalState(whole)];
      assertEquals(Object.keys(a).sort(), Object.keys(b).sort());
      for (const name of Object.keys(b)) assertEquals(a[name].data, b[name].data, name);
      assertEquals(mIoU(join(dir0, "eval-val.json")), mIoU(join(whole, "eval-val.json")));
      assert(existsSync(join(dir1, "eval-val.json")));
      assertEquals(readdirSync(join(s.runs, "slurm")).length, 2);
    } finally {
      await cancelJobs(jobs);
      await rm(s.dir, { recursive: true, force: true });
      await rm(s.runs, { recursive: true, force: true });
    }
  },
});
