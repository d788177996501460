/**
 * Loading an experiment as a user meets it: one line per problem without the file name twice, a syntax
 * error's line and column, and every violation of a spec at once.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { cli } from "./cli_runner.ts";
import { assert, assertEquals } from "./assert.ts";
import { tinyExperiment } from "./fixtures/tiny_experiment.ts";
import { experimentJson } from "../dsl/experiment.ts";

const withDir = async (body: (dir: string) => Promise<void>) => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-spec-"));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

Deno.test("a spec that cannot be loaded is one line naming the file once", async () => {
  await withDir(async (dir) => {
    const cases: [string, string, string][] = [
      ["empty.ts", "export const x = 1;\n", "the module has no default export"],
      ["bad.json", "{ not json", "invalid JSON: "],
      ["spec.yaml", "a: 1\n", 'expected a .ts module or a .json file, got ".yaml"'],
    ];
    for (const [name, text, message] of cases) {
      const file = join(dir, name);
      await writeFile(file, text);
      const r = await cli("spec", file);
      assertEquals(r.code, 1, name);
      assert(r.stderr.startsWith(`${file}: ${message}`), r.stderr);
      assertEquals(r.stderr.split(file).length, 2, `the file is named once: ${r.stderr}`);
      assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
  });
});

Deno.test("a .ts experiment with a syntax error, or that throws, is reported at file:line:column", async () => {
  await withDir(async (dir) => {
    const syntax = join(dir, "syntax.ts");
    await writeFile(syntax, 'export default {\n  name: "x"\n  model: 1,\n};\n');
    const r = await cli("spec", syntax);
    assertEquals([r.code, r.stdout], [1, ""]);
    assertEquals(r.stderr, `${syntax}:3:3: cannot import: SyntaxError: Expected ',', got 'model'\n`);
    const throws = join(dir, "throws.ts");
    await writeFile(throws, "const a: { b?: { c: number } } = {};\nexport default a.b!.c;\n");
    const t = await cli("describe", throws);
    assertEquals(
      t.stderr,
      `${throws}:2:21: cannot import: TypeError: Cannot read properties of undefined (reading 'c')\n`,
    );
    // An error in a module the experiment imports is located in that module.
    const importer = join(dir, "importer.ts");
    await writeFile(importer, 'import e from "./syntax.ts";\nexport default e;\n');
    const i = await cli("spec", importer);
    assertEquals(
      i.stderr,
      `${importer}: cannot import: ${syntax}:3:3: SyntaxError: Expected ',', got 'model'\n`,
    );
  });
});

Deno.test("a spec reports every violation at once: structure and cross-field rules together", async () => {
  await withDir(async (dir) => {
    const e = JSON.parse(experimentJson(tinyExperiment()));
    e.train.steps = -5;
    e.train.batchSize = 0;
    e.model.select.k = 20;
    e.data.train.cropSize = [30, 32];
    const file = join(dir, "three.json");
    await writeFile(file, JSON.stringify(e));
    const r = await cli("spec", file);
    assertEquals(r.code, 1);
    assertEquals(r.stderr.trim().split("\n").sort(), [
      `${file}: data.train.cropSize: 30 is not a multiple of the patch size (8)`,
      `${file}: model.select.k: 20 exceeds the number of classes (8)`,
      `${file}: train.batchSize: Expected a value greater than 0`,
      `${file}: train.steps: Expected a value greater than 0`,
    ]);
  });
});

Deno.test("a spec's seed and step count have the flags' bounds", async () => {
  await withDir(async (dir) => {
    const e = JSON.parse(experimentJson(tinyExperiment()));
    e.train.seed = -1;
    e.train.steps = 1e12;
    const file = join(dir, "bounds.json");
    await writeFile(file, JSON.stringify(e));
    const r = await cli("spec", file);
    assertEquals(r.code, 1);
    assertEquals(r.stderr.trim().split("\n").sort(), [
      `${file}: train.seed: Expected a value greater than or equal to 0`,
      `${file}: train.steps: Expected a value less than or equal to 10000000`,
    ]);
  });
});
