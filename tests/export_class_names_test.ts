/**
 * The exported ONNX file names the classes (metadata_props `kappa.class_names`, a JSON array in class
 * order), so that a user of the file alone can label its outputs.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { cli } from "./cli_runner.ts";
import { assert, assertEquals } from "./assert.ts";
import { tinyExperiment } from "./fixtures/tiny_experiment.ts";
import { run as trainRun } from "./run_helpers.ts";
import { decodeOnnx } from "../onnx/lower.ts";

Deno.test("export: metadata_props carry the class names (kappa.class_names) beside their count", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-export-names-"));
  try {
    const runDir = join(dir, "run");
    const trained = await trainRun(tinyExperiment({ steps: 1, checkpointEvery: 1 }), { out: runDir });
    assert(trained._tag === "Success", String(trained));
    const file = join(dir, "model.onnx");
    const r = await cli("export", runDir, file);
    assertEquals(r.code, 0, r.stderr);
    const meta = Object.fromEntries(
      decodeOnnx(await readFile(file)).metadataProps.map((p) => [p.key, p.value]),
    );
    const names = Array.from({ length: 8 }, (_, c) => `synthetic-${String(c).padStart(5, "0")}`);
    assertEquals(meta["kappa.classes"], "8");
    assertEquals(JSON.parse(meta["kappa.class_names"]), names);
    assert(r.stdout.includes(`meta   kappa.class_names = ${JSON.stringify(names)}`), r.stdout);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
