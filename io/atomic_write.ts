/**
 * Atomic file replacement: readers see either the previous complete file or the new complete file,
 * never a partial one, even if the process dies mid-write or the machine loses power.
 *
 * Steps: write to `<name>.tmp-<pid>-<random>` in the target's own directory (rename is only atomic
 * within one file system), fsync it so its bytes are on disk before the name points at them, rename it
 * over the target, then fsync the directory so the rename itself survives a power loss. A failure
 * before the rename removes the temp file and leaves the target untouched; a hard crash can leave a
 * temp file behind, which `isTempFileName` lets directory scanners recognise and skip.
 */
import { Data, Effect } from "effect";
import { type FileHandle, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import process from "node:process";

export class AtomicWriteError extends Data.TaggedError("AtomicWriteError")<{
  readonly file: string;
  readonly message: string;
}> {}

const describe = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause));

/** `<dir>/<name>.tmp-<pid>-<8 hex digits>` next to `file`. */
export const tempFileFor = (file: string): string =>
  join(dirname(file), `${basename(file)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);

/** Whether a directory entry is a temp file left by `writeFileAtomic*` (pattern `*.tmp-<pid>-<hex>`). */
export const isTempFileName = (name: string): boolean => /\.tmp-\d+-[0-9a-f]+$/.test(name);

const fail = (file: string, step: string) => (cause: unknown) =>
  new AtomicWriteError({ file, message: `${file}: ${step}: ${describe(cause)}` });

const fsyncDirectory = (file: string) =>
  Effect.scoped(
    Effect.acquireRelease(
      Effect.tryPromise({ try: () => open(dirname(file), "r"), catch: fail(file, "opening its directory") }),
      (dir) => Effect.promise(() => dir.close().catch(() => undefined)),
    ).pipe(
      Effect.flatMap((dir) =>
        Effect.tryPromise({ try: () => dir.sync(), catch: fail(file, "syncing its directory") })
      ),
    ),
  );

/**
 * Replaces `file` atomically with whatever `write` puts into the open temp file. `write` may write in
 * pieces (large checkpoints); if it throws, the target is left as it was.
 */
export const writeFileAtomicWith = (
  file: string,
  write: (handle: FileHandle) => Promise<void>,
): Effect.Effect<void, AtomicWriteError> => {
  const temp = tempFileFor(file);
  const writeTemp = Effect.scoped(
    Effect.acquireRelease(
      // "wx": never reuse an existing path, even one with a colliding random suffix.
      Effect.tryPromise({ try: () => open(temp, "wx", 0o644), catch: fail(file, "creating temp file") }),
      (handle) => Effect.promise(() => handle.close().catch(() => undefined)),
    ).pipe(
      Effect.flatMap((handle) =>
        Effect.tryPromise({
          try: async () => {
            await write(handle);
            await handle.sync();
          },
          catch: fail(file, "writing temp file"),
        })
      ),
    ),
  );
  return writeTemp.pipe(
    Effect.andThen(
      Effect.tryPromise({ try: () => rename(temp, file), catch: fail(file, "renaming temp file") }),
    ),
    Effect.onError(() => Effect.promise(() => rm(temp, { force: true }).catch(() => undefined))),
    Effect.andThen(fsyncDirectory(file)),
  );
};

/** Replaces `file` atomically with `data` (strings are written as UTF-8). */
export const writeFileAtomic = (
  file: string,
  data: Uint8Array | string,
): Effect.Effect<void, AtomicWriteError> =>
  writeFileAtomicWith(file, async (handle) => {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    let offset = 0;
    // FileHandle.write may write fewer bytes than asked; loop until all are written.
    while (offset < bytes.length) {
      const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
      offset += bytesWritten;
    }
  });
