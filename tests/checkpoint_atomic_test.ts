import { Effect } from "effect";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertEquals } from "./assert.ts";
import { isTempFileName, tempFileFor, writeFileAtomic, writeFileAtomicWith } from "../io/atomic_write.ts";

const withDir = async (body: (dir: string) => Promise<void>) => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-atomic-"));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

Deno.test("writeFileAtomic creates and replaces a file, leaving no temp file", () =>
  withDir(async (dir) => {
    const file = join(dir, "state.json");
    await Effect.runPromise(writeFileAtomic(file, "first"));
    assertEquals(await readFile(file, "utf8"), "first");
    await Effect.runPromise(writeFileAtomic(file, Uint8Array.from([104, 105])));
    assertEquals(await readFile(file, "utf8"), "hi");
    assertEquals(await readdir(dir), ["state.json"]);
  }));

Deno.test("a write that fails midway keeps the old file and removes the temp file", () =>
  withDir(async (dir) => {
    const file = join(dir, "model.safetensors");
    await writeFile(file, "previous checkpoint");
    let tempSeen = "";
    const failing = writeFileAtomicWith(file, async (handle) => {
      await handle.write(new TextEncoder().encode("half of the new"));
      tempSeen = (await readdir(dir)).find(isTempFileName) ?? "";
      throw new Error("disk full");
    });
    const error = await Effect.runPromise(Effect.flip(failing));
    assertEquals(error._tag, "AtomicWriteError");
    assertEquals(error.file, file);
    assertEquals(error.message, `${file}: writing temp file: disk full`);
    // The temp file existed next to the target while writing, and is gone now.
    assertEquals(tempSeen.startsWith("model.safetensors.tmp-"), true, tempSeen);
    assertEquals(await readFile(file, "utf8"), "previous checkpoint");
    assertEquals(await readdir(dir), ["model.safetensors"]);
  }));

Deno.test("writing into a missing directory fails naming the file", () =>
  withDir(async (dir) => {
    const file = join(dir, "missing", "x.json");
    const error = await Effect.runPromise(Effect.flip(writeFileAtomic(file, "x")));
    assertEquals(error.message.startsWith(`${file}: creating temp file:`), true, error.message);
  }));

Deno.test("a rename that fails (target is a directory) removes the temp file", () =>
  withDir(async (dir) => {
    const file = join(dir, "report.html");
    await mkdir(file);
    const error = await Effect.runPromise(Effect.flip(writeFileAtomic(file, "x")));
    assertEquals(error.message.startsWith(`${file}: renaming temp file:`), true, error.message);
    assertEquals(await readdir(dir), ["report.html"]);
  }));

Deno.test("temp file names: <name>.tmp-<pid>-<hex> in the same directory", () => {
  const temp = tempFileFor("/runs/a/checkpoints/step-000010.safetensors");
  assertEquals(
    /^\/runs\/a\/checkpoints\/step-000010\.safetensors\.tmp-\d+-[0-9a-f]{8}$/.test(temp),
    true,
    temp,
  );
  assertEquals(isTempFileName("step-000010.safetensors.tmp-123-0badcafe"), true);
  assertEquals(isTempFileName("step-000010.safetensors"), false);
  assertEquals(isTempFileName("notes.tmp"), false);
});
