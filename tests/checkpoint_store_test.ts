import { Effect, Schema } from "effect";
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertEquals } from "./assert.ts";
import {
  BEST_KEY,
  checkpointFileName,
  decodeMetadataJson,
  latestCheckpoint,
  loadCheckpoint,
  readBestRecord,
  saveCheckpoint,
} from "../train/checkpoint.ts";
import type { Tensor } from "../io/safetensors.ts";

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(effect);
const fails = <A, E>(effect: Effect.Effect<A, E>) => Effect.runPromise(Effect.flip(effect));

const withDir = async (body: (dir: string) => Promise<void>) => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-ckpt-"));
  try {
    await body(join(dir, "checkpoints"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

const weights = (step: number): Record<string, Tensor> => ({
  "layer.weight": { dtype: "F32", shape: [2, 2], data: Float32Array.from([step, 1, 2, 3]) },
  "optimizer.step": { dtype: "I64", shape: [], data: BigInt64Array.from([BigInt(step)]) },
});

const LoaderPosition = Schema.Struct({ epoch: Schema.Number, index: Schema.Number });

Deno.test("file names are step-<6 digits>.safetensors", () => {
  assertEquals(checkpointFileName(42), "step-000042.safetensors");
  assertEquals(checkpointFileName(1234567), "step-1234567.safetensors");
});

Deno.test("save keeps the last N, loads back tensors and metadata", () =>
  withDir(async (dir) => {
    const pruned: string[] = [];
    for (const step of [10, 20, 30, 40]) {
      const loader = JSON.stringify({ epoch: step / 10, index: step });
      const saved = await run(
        saveCheckpoint(dir, step, { tensors: weights(step), metadata: { loader } }, { keepLast: 2 }),
      );
      assertEquals(saved.file, join(dir, checkpointFileName(step)));
      pruned.push(...saved.pruned);
    }
    assertEquals(pruned, [join(dir, "step-000010.safetensors"), join(dir, "step-000020.safetensors")]);
    assertEquals((await readdir(dir)).sort(), ["step-000030.safetensors", "step-000040.safetensors"]);

    const loaded = await run(loadCheckpoint(join(dir, "step-000040.safetensors")));
    assertEquals(loaded.step, 40);
    assertEquals(loaded.tensors["layer.weight"].data, Float32Array.from([40, 1, 2, 3]));
    assertEquals(loaded.tensors["optimizer.step"].data, BigInt64Array.from([40n]));
    const position = await run(decodeMetadataJson(loaded.metadata, "loader", LoaderPosition, loaded.file));
    assertEquals(position, { epoch: 4, index: 40 });
  }));

Deno.test("best.safetensors follows the best metric value and records its step", () =>
  withDir(async (dir) => {
    const save = (step: number, value: number) =>
      run(saveCheckpoint(dir, step, { tensors: weights(step) }, { best: { metric: "mIoU", value } }));
    assertEquals((await save(1, 0.3)).bestFile, join(dir, "best.safetensors"));
    const second = await save(2, 0.5);
    assertEquals(second.previousBest, { metric: "mIoU", value: 0.3, step: 1 });
    assertEquals(second.bestFile, join(dir, "best.safetensors"));
    assertEquals((await save(3, 0.4)).bestFile, undefined); // worse: best stays at step 2
    assertEquals((await save(4, NaN)).bestFile, undefined);
    assertEquals(await run(readBestRecord(dir)), { metric: "mIoU", value: 0.5, step: 2 });
    const best = await run(loadCheckpoint(join(dir, "best.safetensors")));
    assertEquals(best.step, 2);
    assertEquals(JSON.parse(best.metadata[BEST_KEY]), { metric: "mIoU", value: 0.5, step: 2 });
    assertEquals(best.tensors["layer.weight"].data, Float32Array.from([2, 1, 2, 3]));
    // A corrupt best.safetensors counts as no best: the next save replaces it.
    await writeFile(join(dir, "best.safetensors"), "garbage");
    assertEquals(await run(readBestRecord(dir)), undefined);
    assertEquals((await save(4, 0.1)).bestFile, join(dir, "best.safetensors"));
    assertEquals(await run(readBestRecord(dir)), { metric: "mIoU", value: 0.1, step: 4 });
    // Lower-is-better metrics improve downwards.
    const lower = await run(
      saveCheckpoint(dir, 5, { tensors: weights(5) }, {
        best: { metric: "loss", value: 1.5, higherIsBetter: false },
      }),
    );
    assertEquals(lower.bestFile !== undefined, true); // a different metric takes over
    const lower2 = await run(
      saveCheckpoint(dir, 6, { tensors: weights(6) }, {
        best: { metric: "loss", value: 1.2, higherIsBetter: false },
      }),
    );
    assertEquals(lower2.previousBest, { metric: "loss", value: 1.5, step: 5 });
    assertEquals(lower2.bestFile !== undefined, true);
  }));

Deno.test("latestCheckpoint skips truncated, corrupt and temp files and reports them", () =>
  withDir(async (dir) => {
    assertEquals(await run(latestCheckpoint(dir)), { latest: undefined, skipped: [] }); // no folder yet
    for (const step of [1, 2]) await run(saveCheckpoint(dir, step, { tensors: weights(step) }));
    const good = join(dir, "step-000002.safetensors");
    const bytes = await readFile(good);
    const truncated = join(dir, "step-000003.safetensors");
    await writeFile(truncated, bytes.subarray(0, bytes.length - 5));
    const corrupt = join(dir, "step-000004.safetensors");
    await writeFile(corrupt, "not a safetensors file at all");
    const temp = join(dir, "step-000005.safetensors.tmp-4242-deadbeef");
    await copyFile(good, temp);

    const { latest, skipped } = await run(latestCheckpoint(dir));
    assertEquals(latest, { file: good, step: 2 });
    assertEquals(skipped.map((s) => s.file), [temp, corrupt, truncated]);
    assertEquals(skipped[0].reason, "temporary file of an interrupted write");
    assertEquals(skipped[1].reason.startsWith(`${corrupt}: header length`), true, skipped[1].reason);
    assertEquals(
      skipped[2].reason,
      // I64 optimizer.step (8 bytes) comes first, then the 16 bytes of layer.weight; 5 bytes are missing.
      `${truncated}: tensor "layer.weight": data_offsets [8, 24] run past the 19-byte buffer`,
    );
  }));

Deno.test("a killed writer leaves the previous checkpoint intact and a reported temp file", () =>
  withDir(async (dir) => {
    await run(saveCheckpoint(dir, 1, { tensors: weights(1) }));
    const target = join(dir, "step-000001.safetensors");
    const before = await readFile(target);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--no-check",
        new URL("./checkpoint_crash_child.ts", import.meta.url).pathname,
        target,
      ],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    // Wait until the child has written part of the temp file, then kill it without warning.
    const reader = child.stdout.getReader();
    const { value } = await reader.read();
    assertEquals(new TextDecoder().decode(value).trim(), "writing");
    child.kill("SIGKILL");
    reader.releaseLock();
    await child.stdout.cancel();
    await child.status;
    assertEquals(await readFile(target), before);
    const { latest, skipped } = await run(latestCheckpoint(dir));
    assertEquals(latest, { file: target, step: 1 });
    assertEquals(skipped.length, 1);
    assertEquals(skipped[0].file.startsWith(`${target}.tmp-`), true, skipped[0].file);
  }));

Deno.test("checkpoint errors name the file and what is wrong", () =>
  withDir(async (dir) => {
    const missing = join(dir, "step-000009.safetensors");
    assertEquals((await fails(loadCheckpoint(missing))).message.startsWith(`${missing}: cannot read`), true);

    const badMeta = await fails(saveCheckpoint(dir, 1, { tensors: weights(1), metadata: { rng: "{oops" } }));
    assertEquals(
      badMeta.message.startsWith(`${join(dir, "step-000001.safetensors")}: metadata "rng" is not JSON`),
      true,
    );
    const reserved = await fails(
      saveCheckpoint(dir, 1, { tensors: weights(1), metadata: { [BEST_KEY]: "1" } }),
    );
    assertEquals(reserved.message.endsWith(`metadata key "${BEST_KEY}" is reserved for the store`), true);
    const badTensor = await fails(
      saveCheckpoint(dir, 1, { tensors: { w: { dtype: "F32", shape: [3], data: new Float32Array(2) } } }),
    );
    assertEquals(badTensor.message.endsWith(`tensor "w": shape [3] has 3 elements but data has 2`), true);
    const badKeep = await fails(saveCheckpoint(dir, 1, { tensors: weights(1) }, { keepLast: 0 }));
    assertEquals(badKeep.message.endsWith("keepLast must be a positive integer, got 0"), true);
    const badStep = await fails(saveCheckpoint(dir, -1, { tensors: weights(1) }));
    assertEquals(badStep.message.endsWith("step must be a non-negative integer, got -1"), true);

    await run(saveCheckpoint(dir, 2, { tensors: weights(2), metadata: { loader: '{"epoch":"one"}' } }));
    const file = join(dir, "step-000002.safetensors");
    const loaded = await run(loadCheckpoint(file));
    const invalid = await fails(decodeMetadataJson(loaded.metadata, "loader", LoaderPosition, file));
    assertEquals(invalid.message.startsWith(`${file}: metadata "loader" is invalid:`), true, invalid.message);
    const absent = await fails(decodeMetadataJson(loaded.metadata, "rng", LoaderPosition, file));
    assertEquals(absent.message, `${file}: metadata has no "rng"`);

    const corrupt = join(dir, "step-000003.safetensors");
    await writeFile(corrupt, new Uint8Array(3));
    const notADir = await fails(latestCheckpoint(corrupt));
    assertEquals(notADir.message.startsWith(`${corrupt}: cannot list directory:`), true, notADir.message);
    const corruptError = await fails(loadCheckpoint(corrupt));
    assertEquals(corruptError._tag, "CheckpointError");
    assertEquals(corruptError.message, `${corrupt}: file is 3 bytes, too short for the 8-byte header length`);
  }));
