/**
 * A `.ts` experiment is a program: the tasks that only read specs run it with the narrowest permissions
 * that work (deno.json, measured: README "Experiments are programs"). `spec` grants reading (and one
 * environment variable) only, so an experiment that tries to write a file is stopped by Deno; so does
 * `describe` (the interpreter loads no ONNX Runtime). `data` also grants `--allow-ffi` (sharp's native
 * addon needs it), which Deno's permissions cannot contain: a module could reach the OS through FFI. It
 * still refuses Deno's own write API, which this checks too.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { task } from "./cli_runner.ts";
import { assert, assertEquals } from "./assert.ts";
import { tinyExperiment } from "./fixtures/tiny_experiment.ts";
import { experimentJson } from "../dsl/experiment.ts";

Deno.test("spec, describe and data run a .ts experiment that writes a file without letting it write", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-perm-"));
  try {
    const target = join(dir, "written-by-the-experiment.txt");
    const file = join(dir, "writes.ts");
    await writeFile(
      file,
      `Deno.writeTextFileSync(${JSON.stringify(target)}, "an experiment is a program");\n` +
        `export default ${experimentJson(tinyExperiment())};\n`,
    );
    for (const command of ["spec", "describe", "data"]) {
      const r = await task(".", command, file);
      assertEquals([r.code, r.stdout], [1, ""], `${command}: ${r.stderr}`);
      assertEquals(
        r.stderr,
        `${file}:1:6: cannot import: NotCapable: Requires write access to "${target}", run again with the ` +
          "--allow-write flag\n",
        command,
      );
      assertEquals(existsSync(target), false, command);
    }
    // The same module without the write is an ordinary experiment for all three.
    const clean = join(dir, "clean.ts");
    await writeFile(clean, `export default ${experimentJson(tinyExperiment())};\n`);
    for (const command of ["spec", "describe"]) {
      const r = await task(".", command, clean);
      assertEquals(r.code, 0, `${command}: ${r.stderr}`);
    }
    const data = await task(".", "data", clean, "--split", "val");
    assertEquals(data.code, 0, data.stderr);
    assert(data.stdout.includes("val"), data.stdout);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("spec and describe grant no native code: a .ts experiment cannot load a library through FFI", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-perm-"));
  try {
    const file = join(dir, "ffi.ts");
    await writeFile(
      file,
      `Deno.dlopen("libc.so.6", { getpid: { parameters: [], result: "i32" } });\n` +
        `export default ${experimentJson(tinyExperiment())};\n`,
    );
    for (const command of ["spec", "describe"]) {
      const r = await task(".", command, file);
      assertEquals(r.code, 1, r.stderr);
      assert(r.stderr.startsWith(`${file}:1:6: cannot import: NotCapable: Requires ffi access`), r.stderr);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
