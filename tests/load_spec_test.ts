/**
 * One loader for spec files (`dsl/load_spec.ts`): experiments and dataset specs read `.json` and import `.ts`
 * the same way, and a file that cannot be loaded fails with the same one-line message naming it, whichever
 * of the two loads it.
 */
import { Effect } from "effect";
import { join } from "node:path";
import { assertEquals } from "./assert.ts";
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
