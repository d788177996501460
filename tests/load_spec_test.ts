/**
 * One loader for spec files (`dsl/load_spec.ts`): experiments and dataset specs read `.json` and import `.ts`
 * the same way, and a file that cannot be loaded fails with the same one-line message naming it, whichever
 * of the two loads it.
 */
import { Effect } from "effect";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { cli } from "./cli_runner.ts";
import * as m from "../dsl/model.ts";
import { frozenBackbone } from "../dsl/training.ts";
import { overrideFlags, runExperiment, seedRun, specRun, withGridFrozen } from "../grids/grid_runs.ts";
import { put, withTempDir } from "./data_fixtures.ts";
import { loadSpecFile } from "../dsl/load_spec.ts";
import { experimentJson, loadExperiment, withOverrides } from "../dsl/experiment.ts";
import { loadDatasetSpec } from "../data/spec_file.ts";
import quickstart from "../experiments/quickstart.ts";

const failure = <E>(effect: Effect.Effect<unknown, E>): Promise<E> => Effect.runPromise(Effect.flip(effect));

Deno.test("loadSpecFile: a .json file parsed, a module's default export imported", () =>
  withTempDir(async (dir) => {
    const json = await put(join(dir, "a.json"), '{"x": [1, 2]}');
    const module = await put(join(dir, "b.ts"), "export default { x: [1, 2] };\n");
    for (const file of [json, module]) {
      assertEquals(await Effect.runPromise(loadSpecFile(file)), { x: [1, 2] }, file);
    }
  }));

Deno.test("a spec file that cannot be loaded: one message naming the file, the same for experiments and datasets", () =>
  withTempDir(async (dir) => {
    const cases: [string, string, string][] = [
      ["bad.json", "{ not json", "invalid JSON: "],
      ["empty.ts", "export const x = 1;\n", "the module has no default export"],
      ["broken.ts", "export default {", "cannot import: "],
      ["spec.yaml", "a: 1\n", 'expected a .ts module or a .json file, got ".yaml"'],
    ];
    for (const [name, text, message] of cases) {
      const file = await put(join(dir, name), text);
      const loaded = await failure(loadSpecFile(file));
      // A module that does not import is named with the line and column of the error.
      assertEquals(
        [loaded.file.startsWith(file), loaded.message.startsWith(message)],
        [true, true],
        loaded.message,
      );
      // The file is named once: as the error's source, not again as the violation's path.
      const experiment = await failure(loadExperiment(file));
      assertEquals([experiment.source, experiment.violations], [loaded.file, [{
        path: "",
        message: loaded.message,
      }]]);
      const dataset = await failure(loadDatasetSpec(file));
      assertEquals([dataset.file, dataset.message], [loaded.file, loaded.message]);
    }
    const missing = join(dir, "missing.ts");
    assertEquals((await failure(loadSpecFile(missing))).message, "no such file");
    const notThere = await failure(loadExperiment(missing));
    assertEquals([notThere.source, notThere.violations], [missing, [{ path: "", message: "no such file" }]]);
  }));

Deno.test("loadExperiment: the .ts module and its canonical .json load as the same experiment", () =>
  withTempDir(async (dir) => {
    const json = await put(join(dir, "quickstart.json"), experimentJson(quickstart));
    const [fromTs, fromJson] = await Promise.all(
      ["experiments/quickstart.ts", json].map((f) => Effect.runPromise(loadExperiment(f))),
    );
    assertEquals(experimentJson(fromJson), experimentJson(fromTs));
  }));

Deno.test("withOverrides: the step count and seed replaced only when given", () => {
  assertEquals(withOverrides(quickstart), quickstart);
  const e = withOverrides(quickstart, 7, 3);
  assertEquals([e.train.steps, e.train.seed], [7, 3]);
  assertEquals({ ...e, train: quickstart.train }, { ...quickstart });
  assertEquals(withOverrides(quickstart, undefined, 2).train.steps, quickstart.train.steps);
});

Deno.test("withOverrides: a frozen backbone set only when given, replacing the spec's", () => {
  const e = withOverrides(quickstart, undefined, 1, frozenBackbone({ draws: 4 }));
  assertEquals(e.train.frozenBackbone, { draws: 4 });
  assertEquals({ ...e, train: { ...e.train, seed: quickstart.train.seed, frozenBackbone: undefined } }, {
    ...quickstart,
    train: { ...quickstart.train, frozenBackbone: undefined },
  });
  assertEquals(withOverrides(e, 9).train.frozenBackbone, { draws: 4 });
  assertEquals(withOverrides(e, undefined, undefined, frozenBackbone({ draws: 0 })).train.frozenBackbone, {
    draws: 0,
  });
});

Deno.test("grid runs with --frozen-backbone: folders of their own, the override applied and validated", async () => {
  const spec = "experiments/quickstart.ts";
  const run = seedRun("runs/g", spec, quickstart, { steps: 50, frozenBackbone: 8 }, 2);
  assertEquals(run.dir, join("runs/g", `${quickstart.name}-50steps-frozen8-s2`));
  assertEquals(seedRun("runs/g", spec, quickstart, {}, 0).dir, join("runs/g", `${quickstart.name}-s0`));
  assertEquals(specRun("runs/g", spec, quickstart, 0).dir, join("runs/g", "quickstart-frozen0"));
  assertEquals(overrideFlags({ steps: 50, frozenBackbone: 8 }), " --steps 50 --frozen-backbone 8");
  const e = await Effect.runPromise(runExperiment(run));
  assertEquals([e.train.steps, e.train.seed, e.train.frozenBackbone], [50, 2, { draws: 8 }]);
  assertEquals(withGridFrozen(quickstart, 8).train.frozenBackbone, { draws: 8 });
  assertEquals(withGridFrozen(quickstart, undefined), quickstart);
  // The override is checked with the spec: an independent scheme cannot read cached features.
  await withTempDir(async (dir) => {
    const independent = {
      ...quickstart,
      model: { ...quickstart.model, xi: null, multiLabelLoss: null, scheme: m.independent("runs/ranker") },
    };
    // Valid as written (fine-tuning); the override is what makes it invalid.
    await Effect.runPromise(loadExperiment(await put(join(dir, "ok.json"), experimentJson(independent))));
    const file = await put(join(dir, "independent.json"), experimentJson(independent));
    const refused = await Effect.runPromise(
      Effect.flip(runExperiment(seedRun(dir, file, quickstart, { frozenBackbone: 2 }, 0))),
    );
    assert(refused.violations.some((v) => v.path === "train.frozenBackbone.draws"), String(refused.message));
    // `train --frozen-backbone` the same: one line naming the field, nothing trained.
    const r = await cli("train", file, "--frozen-backbone", "2", "--out", join(dir, "run"));
    assertEquals(r.code, 1, r.stderr);
    assert(r.stderr.includes("train.frozenBackbone.draws: 2: the independent scheme's ranker"), r.stderr);
    assert(!existsSync(join(dir, "run")));
  });
});
