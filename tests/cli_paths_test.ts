/**
 * Paths as the user typed them: a task typed in a subfolder reads its path arguments relative to that
 * folder (deno.json passes Deno's INIT_CWD on as KAPPA_USER_CWD; cli/user_path.ts), while paths inside a
 * spec keep their documented meaning (relative to the repository, where every task runs).
 */
import { resolve } from "node:path";
import { task } from "./cli_runner.ts";
import { assert, assertEquals } from "./assert.ts";

Deno.test("a task typed in a subfolder reads the paths given relative to that folder", async () => {
  const r = await task("experiments", "describe", "quickstart.ts", "--json");
  assertEquals(r.code, 0, r.stderr);
  assertEquals(JSON.parse(r.stdout).name, "quickstart-camvid");
  // A missing file is named as typed and as found, once.
  const missing = await task("experiments", "spec", "nope.ts");
  assertEquals([missing.code, missing.stdout], [1, ""]);
  assertEquals(missing.stderr, `experiments/nope.ts: no such file\n`);
});

Deno.test("data paths inside a spec keep their meaning: relative to the repository, wherever the task is typed", async () => {
  // quickstart.ts names ../shared/data/camvid; typed from experiments/, it is still the repository's.
  const r = await task("experiments", "data", "quickstart.ts", "--split", "val");
  assertEquals(r.code, 0, r.stderr);
  assert(r.stdout.includes("val") && r.stdout.includes("101"), r.stdout);
  assert(!r.stdout.includes(resolve("experiments", "../shared")), r.stdout);
});
