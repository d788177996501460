/**
 * kappa used as a user's own project uses it: a scratch project OUTSIDE the repository, in a folder whose
 * parent holds no `kappa` checkout, runs the README's "Composing a segmenter" example exactly as the README
 * gives it (`import * as k from "kappa/mod.ts"`, not a word changed), with the deno.json the README's set-up
 * describes: kappa's `imports` block, `"nodeModulesDir": "auto"`, and the `"kappa/"` entry pointing at this
 * checkout. It composes a custom segmenter, validates it, compiles and costs it, and trains it for 2 steps.
 */
import { assert, assertEquals } from "./assert.ts";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { existsSync, readdirSync } from "node:fs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const README = Deno.readTextFileSync(join(ROOT, "README.md"));

/** The first ```ts block of the README section `heading`. */
const exampleOf = (heading: string): string => {
  const section = README.split(/^## /m).find((s) => s.startsWith(heading));
  assert(section !== undefined, `README has no "## ${heading}" section`);
  const block = section.match(/```ts\n([\s\S]*?)```/);
  assert(block !== null, `README's "${heading}" has no ts example`);
  return block[1];
};

Deno.test({
  name: "public API: a project outside the repository runs the README's example through mod.ts only",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const example = exampleOf("Composing a segmenter");
    const kappaImports = [...example.matchAll(/from "([^"]*kappa[^"]*)"/g)].map((m) => m[1]);
    assertEquals(kappaImports, ["kappa/mod.ts"], "the example imports kappa through mod.ts only");
    const section = README.split(/^## /m).find((s) => s.startsWith("Composing a segmenter"))!;
    // The set-up the README gives: the "kappa/" import-map entry, as a file URL or a path, ending in "/".
    const setup = section.match(/```json\n([\s\S]*?)```/);
    assert(setup !== null, "README's set-up has no deno.json example");
    const userConfig = JSON.parse(setup[1]);
    assertEquals(Object.keys(userConfig.imports)[0], "kappa/");
    assertEquals(userConfig.nodeModulesDir, "auto");

    const project = await Deno.makeTempDir({ prefix: "kappa-user-project-" });
    try {
      assert(!existsSync(join(dirname(project), "kappa")), `${dirname(project)} holds a kappa folder`);
      await Deno.writeTextFile(join(project, "main.ts"), example);
      // The README's deno.json with its placeholder location replaced by where this checkout is, and the
      // rest of kappa's imports copied in, as its instructions say.
      const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
      for (const [name, target] of Object.entries(userConfig.imports).slice(1)) {
        assertEquals(target, config.imports[name], `README's deno.json entry ${name} is kappa's`);
      }
      await Deno.writeTextFile(
        join(project, "deno.json"),
        JSON.stringify(
          {
            ...userConfig,
            imports: { ...config.imports, "kappa/": `${pathToFileURL(ROOT).href}/` },
          },
          null,
          2,
        ),
      );
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "main.ts"],
        cwd: project,
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
      const stdout = new TextDecoder().decode(out.stdout);
      const stderr = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 0, `the example failed:\n${stderr.slice(-600)}`);
      // The describe table and the printed graph, as the README shows them.
      assert(/^total\s+[\d,]+\s+\d+\.\d{3}$/m.test(stdout), stdout);
      assert(stdout.includes('%0:f32[1,3,32,32] = input "images"'), stdout);
      assert(stdout.includes("trained 2 steps: runs/my-segmenter"), stdout);
      const checkpoints = readdirSync(join(project, "runs/my-segmenter/checkpoints"));
      assert(checkpoints.includes("step-000002.safetensors"), checkpoints.join(", "));
      assert(existsSync(join(project, "runs/my-segmenter/experiment.json")));
    } finally {
      await Deno.remove(project, { recursive: true });
    }
  },
});
