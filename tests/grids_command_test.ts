/**
 * `deno task grid`: the experiment grids' dispatcher answers --help / -h without running a grid, refuses an
 * unknown grid with the usage, and `deno task bench` names the grids' new command instead of running them.
 */
import { assert, assertEquals } from "./assert.ts";

const run = async (entry: string, ...args: string[]) => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", entry, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
};

Deno.test("grid --help lists every grid and its flags; a grid's --help or -h only its own, and runs nothing", async () => {
  const all = await run("grids/main.ts", "--help");
  assertEquals([all.code, all.stderr], [0, ""]);
  assert(all.stdout.startsWith("usage: deno task grid <ablation|larvseg|panoptic> [flags]"), all.stdout);
  for (
    const form of ["ablation [--grid scratch|pretrained] [--seeds 3]", "larvseg [--seeds 3]", "panoptic step"]
  ) {
    assert(all.stdout.includes(`  ${form}`), form);
  }
  // Were the grid to run, --report-only would read the runs and rewrite RESULTS.md; help returns first.
  const before = await Deno.readTextFile("RESULTS.md");
  for (const args of [["ablation", "--report-only", "-h"], ["panoptic", "diagnose", "--help"]]) {
    const one = await run("grids/main.ts", ...args);
    assertEquals([one.code, one.stderr], [0, ""], args.join(" "));
    assertEquals(one.stdout.includes(`  ${args[0]} `), true, one.stdout);
    assertEquals(one.stdout.includes("  larvseg "), false, one.stdout);
  }
  assertEquals(await Deno.readTextFile("RESULTS.md"), before);
});

Deno.test("grid: no grid or an unknown one is the usage on stderr and status 2", async () => {
  const none = await run("grids/main.ts");
  assertEquals([none.code, none.stdout], [2, ""]);
  assert(none.stderr.startsWith("usage: deno task grid"), none.stderr);
  const unknown = await run("grids/main.ts", "ablations");
  assertEquals([unknown.code, unknown.stdout], [2, ""]);
  assertEquals(unknown.stderr.split("\n")[0], "grid ablations: no such grid");
});

Deno.test("bench ablation|larvseg|panoptic: one line naming the grid command, status 2, nothing run", async () => {
  for (const name of ["ablation", "larvseg", "panoptic"]) {
    const r = await run("bench/main.ts", name, "--seeds", "3");
    assertEquals(
      [r.code, r.stdout, r.stderr],
      [2, "", `bench ${name}: the experiment grids moved; run: deno task grid ${name} --seeds 3\n`],
    );
  }
});
