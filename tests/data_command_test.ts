import { Console, Effect } from "effect";
import { join } from "node:path";
import { assertClose, assertEquals } from "./assert.ts";
import { check as assert, encodePng, put, withTempDir, writeFolderDataset } from "./data_fixtures.ts";
import { dataCommand, formatReports, parseDataArgs } from "../data/command.ts";
import { type BadFiles, problemLine } from "../data/errors.ts";
import { loadDatasetSpec } from "../data/spec_file.ts";
import { cocoPanoptic, folder } from "../dsl/dataset.ts";
import { openDataset } from "../data/open.ts";
import { validateSplit } from "../data/validate.ts";
import { experimentJson } from "../dsl/experiment.ts";
import quickstartExperiment from "../experiments/quickstart.ts";

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect);
const failure = <E>(effect: Effect.Effect<unknown, E>): Promise<E> =>
  Effect.runPromise(Effect.flip(effect) as Effect.Effect<E>);

// 4x3 masks over classes a, b, c (255 = ignore): good1 has a:3 b:6 c:2 ignore:1, good2 a:2 c:8 ignore:2.
const GOOD1 = [0, 0, 1, 1, 0, 2, 2, 255, 1, 1, 1, 1];
const GOOD2 = [2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 255, 255];
const fixture = (root: string) =>
  writeFolderDataset(root, "train", { width: 4, height: 3, samples: { good1: GOOD1, good2: GOOD2 } });

/** Runs `effect` with console output captured. */
const captured = async <A, E>(effect: Effect.Effect<A, E>) => {
  const out: string[] = [], err: string[] = [];
  const fake = {
    ...globalThis.console,
    log: (...a: unknown[]) => out.push(a.join(" ")),
    error: (...a: unknown[]) => err.push(a.join(" ")),
  };
  const exit = await Effect.runPromiseExit(effect.pipe(Effect.provideService(Console.Console, fake)));
  return { exit, out: out.join("\n"), err };
};

Deno.test("validateSplit: counts, classes present, mean classes per image, pixel frequencies (hand-computed)", () =>
  withTempDir(async (root) => {
    await fixture(root);
    const r = await run(validateSplit(folder({ root, classes: "classes.json" }), "train"));
    assertEquals([r.images, r.valid, r.problems.length, r.classesPresent], [2, 2, 0, 3]);
    assertEquals(r.classNames, ["a", "b", "c"]);
    assertEquals(r.pixelCounts, [5, 6, 10]);
    assertClose(r.pixelFrequency, [5 / 21, 6 / 21, 10 / 21]);
    assertClose(r.meanClassesPerImage, 2.5);
    assertClose(r.ignoredFraction, 3 / 24);
  }));

Deno.test("dataCommand: prints the counts table for every split; built-in names resolve", () =>
  withTempDir(async (root) => {
    await fixture(root);
    await writeFolderDataset(root, "val", { width: 4, height: 3, samples: { v: GOOD1 } });
    const spec = await put(
      join(root, "spec.json"),
      JSON.stringify({ _tag: "Folder", root, classes: "classes.json" }),
    );
    const { exit, out } = await captured(dataCommand({ target: spec }));
    assert(exit._tag === "Success", String(exit));
    const lines = out.split("\n");
    const name = root.split("/").pop();
    assertEquals(lines[0], `${name}: 3 classes, ignore index 255`);
    assert(/^train\s+2\s+0\s+3\/3\s+2\.50\s+12\.50$/.test(lines.find((l) => l.startsWith("train"))!), out);
    assert(/^val\s+1\s+0\s+3\/3\s+3\.00\s+8\.33$/.test(lines.find((l) => l.startsWith("val"))!), out);
    assert(/^c\s+47\.62\s+18\.18$/.test(lines.find((l) => l.startsWith("c "))!), out);
    const camvid = await run(loadDatasetSpec("camvid"));
    assertEquals([camvid.spec._tag, camvid.spec.name, camvid.file], ["Folder", "camvid", "camvid"]);
  }));

Deno.test("dataCommand: bad files -> a BadFiles failure with one problem each, nothing printed twice", () =>
  withTempDir(async (root) => {
    await fixture(root);
    await put(join(root, "annotations", "train", "bad.png"), encodePng(4, 3, "grey8", GOOD1.map(() => 9)));
    await put(join(root, "images", "train", "bad.png"), "garbage");
    await put(join(root, "images", "train", "alone.png"), "garbage");
    const spec = await put(
      join(root, "spec.json"),
      JSON.stringify({ _tag: "Folder", root, classes: "classes.json" }),
    );
    const { exit, err } = await captured(dataCommand({ target: spec, split: "train" }));
    assert(exit._tag === "Failure", "fails");
    const e = await failure(
      dataCommand({ target: spec, split: "train" }).pipe(
        Effect.provideService(Console.Console, { ...console, log() {}, error() {} }),
      ),
    );
    assertEquals([e._tag, e.file, e.message], ["BadFiles", spec, "2 bad files in train"]);
    // The command prints no problem itself: the CLI prints the error's problems, one line each.
    assertEquals(err, []);
    assertEquals((e as BadFiles).problems.map(problemLine), [
      `${join(root, "images", "train", "alone.png")}: no mask ${
        join(root, "annotations", "train", "alone.png")
      }`,
      `${join(root, "images", "train", "bad.png")}: not a decodable image (corrupt or unsupported format)`,
    ]);
    const skipped = await captured(dataCommand({ target: spec, split: "train", skipBad: true }));
    assert(skipped.exit._tag === "Success", "skipBad succeeds");
    assert(skipped.out.includes("skipped 2 bad files:"), skipped.out);
  }));

Deno.test("cli data: each bad file is printed once on stderr, and the exit status is 1", () =>
  withTempDir(async (root) => {
    await fixture(root);
    await put(join(root, "annotations", "train", "bad.png"), encodePng(4, 3, "grey8", GOOD1));
    await put(join(root, "images", "train", "bad.png"), "garbage");
    await put(join(root, "images", "train", "alone.png"), "garbage");
    const spec = await put(
      join(root, "spec.json"),
      JSON.stringify({ _tag: "Folder", root, classes: "classes.json" }),
    );
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "cli/main.ts", "data", spec, "--split", "train"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(run.stderr);
    const lines = stderr.split("\n").filter((l) => l.length > 0);
    assertEquals(run.code, 1, stderr);
    const bad = [
      `${join(root, "images", "train", "alone.png")}: no mask ${
        join(root, "annotations", "train", "alone.png")
      }`,
      `${join(root, "images", "train", "bad.png")}: not a decodable image (corrupt or unsupported format)`,
    ];
    for (const line of bad) assertEquals(lines.filter((l) => l === line).length, 1, stderr);
    assert(new TextDecoder().decode(run.stdout).includes("train"), "the table is still printed");
  }));

Deno.test("loadDatasetSpec: .json specs and experiments, .ts default exports, and clear errors", () =>
  withTempDir(async (root) => {
    const dataset = { _tag: "Folder", root: "data/x", classes: "c.json" };
    const plain = await put(join(root, "d.json"), JSON.stringify(dataset));
    const nested = await put(join(root, "e.json"), JSON.stringify({ data: { dataset }, batchSize: 8 }));
    const module = await put(
      join(root, "exp.ts"),
      `export default { dataset: ${JSON.stringify(dataset)}, batchSize: 8 };\n`,
    );
    for (const file of [plain, nested, module]) {
      const { spec } = await run(loadDatasetSpec(file));
      assertEquals([spec._tag, spec._tag === "Folder" ? spec.root : ""], ["Folder", "data/x"], file);
    }
    const none = await put(join(root, "none.json"), JSON.stringify({ batchSize: 8 }));
    assertEquals(
      problemLine(await failure(loadDatasetSpec(none))),
      `${none}: no dataset spec: expected an object with _tag, or an experiment with \`dataset\` or \`data.dataset\``,
    );
    const typo = await put(join(root, "typo.json"), JSON.stringify({ ...dataset, annotationsDir: "x" }));
    assertEquals(
      problemLine(await failure(loadDatasetSpec(typo))),
      `${typo}: at ["annotationsDir"]: Expected no excess property`,
    );
    assertEquals(
      (await failure(loadDatasetSpec("cityscapes"))).message,
      "not found; expected camvid, coco133 or ccp, a .json spec or a .ts module",
    );
    const yaml = await put(join(root, "d.yaml"), "_tag: Folder");
    assertEquals(
      (await failure(loadDatasetSpec(yaml))).message,
      `expected a .ts module or a .json file, got ".yaml"`,
    );
  }));

Deno.test("loadDatasetSpec: the shipped experiment files (tagged Experiment) yield their data.dataset", async () => {
  const quickstart = await run(loadDatasetSpec("experiments/quickstart.ts"));
  assertEquals([quickstart.spec._tag, quickstart.spec.name, quickstart.file], [
    "Folder",
    "camvid",
    "experiments/quickstart.ts",
  ]);
  const coco = await run(loadDatasetSpec("experiments/rankseg/coco133-mt.ts"));
  assertEquals([coco.spec._tag, coco.spec.name], ["CocoPanoptic", "coco133"]);
  const camvid = await run(loadDatasetSpec("experiments/rankseg/camvid-baseline.ts"));
  assertEquals([camvid.spec._tag, camvid.spec.name], ["Folder", "camvid"]);
  // The JSON form of an experiment (what `deno task spec` writes and run folders keep) is tagged too.
  await withTempDir(async (dir) => {
    const json = await put(join(dir, "experiment.json"), experimentJson(quickstartExperiment));
    const loaded = await run(loadDatasetSpec(json));
    assertEquals([loaded.spec._tag, loaded.spec.name], ["Folder", "camvid"]);
  });
});

Deno.test("a dataset root that does not exist is a spec error naming the file and the field", () =>
  withTempDir(async (dir) => {
    const where = `(relative to the working directory ${Deno.cwd()})`;
    const plain = await put(
      join(dir, "x.json"),
      JSON.stringify({ _tag: "Folder", root: "../nope", classes: "classes.json" }),
    );
    const quiet = { ...console, log() {}, error() {} };
    const fails = (target: string) =>
      failure(dataCommand({ target }).pipe(Effect.provideService(Console.Console, quiet)));
    assertEquals(problemLine(await fails(plain)), `${plain}: root: ../nope does not exist ${where}`);
    const e = JSON.parse(experimentJson(quickstartExperiment));
    e.data.dataset.root = "../nope";
    const experiment = await put(join(dir, "e.json"), JSON.stringify(e));
    assertEquals(
      problemLine(await fails(experiment)),
      `${experiment}: data.dataset.root: ../nope does not exist ${where}`,
    );
    const absent = join(dir, "absent");
    const coco = await put(
      join(dir, "c.json"),
      JSON.stringify({ data: { dataset: { _tag: "CocoPanoptic", root: absent } } }),
    );
    assertEquals(
      problemLine(await fails(coco)),
      `${coco}: data.dataset.root: ${absent} does not exist`,
    );
    // Training, eval and predict open an experiment's dataset through openDataset: same check, same field.
    const opened = await failure(openDataset(folder({ root: "../nope", classes: "classes.json" }), "train"));
    assertEquals(
      [opened._tag, problemLine(opened)],
      ["InvalidConfig", `<dataset spec>: data.dataset.root: ../nope does not exist ${where}`],
    );
    const named = await failure(
      openDataset(cocoPanoptic({ root: absent }), "val2017", "exp.ts", "data.dataset"),
    );
    assertEquals(problemLine(named), `exp.ts: data.dataset.root: ${absent} does not exist`);
  }));

Deno.test("parseDataArgs: target, --split, --skip-bad", async () => {
  assertEquals(await run(parseDataArgs(["camvid", "--split", "val"])), {
    target: "camvid",
    split: "val",
    skipBad: false,
  });
  assertEquals(await run(parseDataArgs(["--split=test", "x.json", "--skip-bad"])), {
    target: "x.json",
    split: "test",
    skipBad: true,
  });
  assert((await failure(parseDataArgs([]))).message.startsWith("usage: deno task data"), "usage");
  assert((await failure(parseDataArgs(["a", "b"]))).message.startsWith(`unexpected "b"`), "extra argument");
});

Deno.test("formatReports: large vocabularies list the 50 most frequent classes", () => {
  const names = Array.from({ length: 300 }, (_, i) => `k${i}`);
  const counts = names.map((_, i) => i);
  const text = formatReports([{
    dataset: "big",
    split: "train",
    classNames: names,
    ignoreIndex: 65535,
    images: 1,
    valid: 1,
    problems: [],
    classesPresent: 299,
    meanClassesPerImage: 299,
    pixelCounts: counts,
    pixelFrequency: counts.map((c) => c / 44850),
    ignoredFraction: 0,
  }]);
  const lines = text.split("\n");
  assertEquals(lines.filter((l) => /^k\d+ /.test(l)).length, 50);
  assert(lines.some((l) => l.startsWith("k299 ")), "the most frequent class is listed");
  assertEquals(lines[lines.length - 1], "… 250 more classes");
});
