/**
 * kappa used as a user's own project uses it: a scratch project OUTSIDE the repository imports kappa only
 * through `mod.ts` (by file URL), with kappa's npm imports in its own deno.json, as the README says. The
 * program it runs is the README's "Composing a segmenter" example, verbatim but for the path to mod.ts:
 * it composes a custom segmenter, validates it, compiles and costs it, and trains it for 2 steps.
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
    assertEquals(kappaImports, ["../kappa/mod.ts"], "the example imports kappa through mod.ts only");

    const project = await Deno.makeTempDir({ prefix: "kappa-user-project-" });
    try {
      const modUrl = pathToFileURL(join(ROOT, "mod.ts")).href;
      await Deno.writeTextFile(join(project, "main.ts"), example.replace('"../kappa/mod.ts"', `"${modUrl}"`));
      const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
      await Deno.writeTextFile(
        join(project, "deno.json"),
        JSON.stringify({ imports: config.imports, nodeModulesDir: "auto" }, null, 2),
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
      assertEquals(out.code, 0, `the example failed:\n${stderr.slice(-2000)}`);
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
