/**
 * The run folder's lock, `<run>/train.lock`: one `train` at a time writes into a folder. Two trainers in
 * one folder would interleave metrics.jsonl, overwrite each other's checkpoints and lose one result
 * silently; the second is refused instead, with a line naming the holder (PID, host, start time).
 *
 * The lock is a small JSON file ({pid, host, startedAt, token, and where the OS tells them, the boot id
 * and the process start time}) that appears atomically (written to a temp file, then hard-linked to its
 * name, which fails if it exists). It is held for the run's lifetime: acquired in the run's Scope and
 * removed when the scope closes, on success, failure and interruption. A holder that died without
 * removing it (SIGKILL, power loss) left a stale lock: on the same host, a PID that no longer runs (or
 * now belongs to another process, or belongs to a previous boot) is recovered, and said in one line. A
 * lock from another host cannot be checked from here and is refused, naming the file to remove.
 *
 * Reading a run (eval, predict, export) takes no lock: checkpoints and records are replaced atomically.
 */
import { Data, Effect, type Scope } from "effect";
import { existsSync, readFileSync } from "node:fs";
import { link, mkdir, readFile, rename, rm, rmdir, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { randomBytes } from "node:crypto";
import { RunFolderError } from "./run_folder.ts";

export const LOCK_FILE = "train.lock";

/** Who holds a run folder's lock, as its lock file records it. */
export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  readonly startedAt: string;
  /** Random, unique per acquisition: tells one holder's file from another's with the same PID. */
  readonly token: string;
  /** Linux: /proc/sys/kernel/random/boot_id, so a lock from before a reboot is known to be stale. */
  readonly bootId?: string;
  /** Linux: the process's start time in clock ticks since boot (/proc/<pid>/stat), so a reused PID is seen. */
  readonly processStart?: string;
}

/** Another train holds the folder (or may: a lock from another host cannot be checked). */
export class RunFolderLocked extends Data.TaggedError("RunFolderLocked")<{
  readonly dir: string;
  readonly lockFile: string;
  readonly holder: LockHolder;
  readonly sameHost: boolean;
}> {
  override get message(): string {
    const { pid, host, startedAt } = this.holder;
    return this.sameHost
      ? `${this.dir}: in use by another train (PID ${pid} on ${host}, started ${startedAt}); ` +
        "wait for it to finish, or train into another --out"
      : `${this.dir}: in use by a train on another host (PID ${pid} on ${host}, started ${startedAt}), ` +
        `which cannot be checked from here; if that run is gone, remove ${this.lockFile}`;
  }
}

const describe = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0];
const code = (e: unknown) => (e as { code?: string }).code;

const readProc = (path: string): string | undefined => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
};

const bootId = () => readProc("/proc/sys/kernel/random/boot_id")?.trim();

/** Field 22 of /proc/<pid>/stat (start time); the command name (field 2) may hold spaces and parentheses. */
const processStart = (pid: number) => {
  const stat = readProc(`/proc/${pid}/stat`);
  return stat?.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
};

/**
 * Whether `pid` runs on this host (EPERM: it runs, as another user). A zombie — dead, not yet reaped by
 * its parent (field 3 of /proc/<pid>/stat is Z or X) — does not: it answers signal 0, but holds nothing.
 * A killed MPI rank whose mpirun exited first stays one until the init process reaps it, which may be never.
 */
export const isRunning = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return code(e) === "EPERM";
  }
  const stat = readProc(`/proc/${pid}/stat`);
  const state = stat?.slice(stat.lastIndexOf(")") + 2)[0];
  return state !== "Z" && state !== "X";
};

/**
 * Whether a lock of this host's is stale: the boot changed, the PID is gone, or it now names a process
 * that started at another time than the holder.
 */
export const holderGone = (h: LockHolder): boolean => {
  const boot = bootId();
  if (h.bootId !== undefined && boot !== undefined && h.bootId !== boot) return true;
  if (!Number.isInteger(h.pid) || h.pid <= 0 || !isRunning(h.pid)) return true;
  const started = processStart(h.pid);
  return h.processStart !== undefined && started !== undefined && started !== h.processStart;
};

export const parseHolder = (text: string): LockHolder | undefined => {
  try {
    const h = JSON.parse(text);
    return typeof h?.pid === "number" && typeof h?.host === "string" && typeof h?.token === "string"
      ? { startedAt: "an unknown time", ...h }
      : undefined;
  } catch {
    return undefined;
  }
};

/** The lock file's holder, or undefined when there is no lock file. */
const readHolder = (dir: string, file: string) =>
  Effect.tryPromise({
    try: () => readFile(file, "utf8").catch((e) => (code(e) === "ENOENT" ? undefined : Promise.reject(e))),
    catch: (e) => new RunFolderError({ dir, reason: `cannot read ${file}: ${describe(e)}` }),
  }).pipe(
    Effect.flatMap((text) => {
      if (text === undefined) return Effect.succeed(undefined);
      const holder = parseHolder(text);
      return holder ? Effect.succeed(holder) : Effect.fail(
        new RunFolderError({
          dir,
          reason: `${file} is not a lock this version wrote; if no train runs in this folder, remove it`,
        }),
      );
    }),
  );

/** This process as the holder of a new lock (a fresh token). */
export const lockHolder = (): LockHolder => ({
  pid: process.pid,
  host: hostname(),
  startedAt: new Date().toISOString(),
  token: randomBytes(8).toString("hex"),
  ...(bootId() === undefined ? {} : { bootId: bootId() }),
  ...(processStart(process.pid) === undefined ? {} : { processStart: processStart(process.pid) }),
});

export interface HeldLock {
  readonly file: string;
  readonly holder: LockHolder;
  /** The line saying that a stale lock was recovered, if one was. */
  readonly recovered: string | undefined;
}

/**
 * Takes the folder's lock for the enclosing Scope (creating the folder if needed; a folder this created
 * is removed again on release if the run wrote nothing else into it). Fails with `RunFolderLocked` when a
 * live train holds it.
 */
export const acquireRunLock = (
  dir: string,
): Effect.Effect<HeldLock, RunFolderLocked | RunFolderError, Scope.Scope> => {
  const fail = (doing: string) => (e: unknown) =>
    new RunFolderError({ dir, reason: `${doing}: ${describe(e)}` });
  const file = join(dir, LOCK_FILE);
  const acquire = Effect.gen(function* () {
    const created = !existsSync(dir);
    yield* Effect.tryPromise({ try: () => mkdir(dir, { recursive: true }), catch: fail("cannot create") });
    const me = lockHolder();
    const temp = `${file}.tmp-${process.pid}-${me.token}`;
    let recovered: string | undefined;
    // A stale lock is set aside in one round; the next takes the lock or meets the process that took
    // it meanwhile.
    for (let round = 0; round < 3; round++) {
      yield* Effect.tryPromise({
        try: () => writeFile(temp, JSON.stringify(me) + "\n", { flag: "wx" }),
        catch: fail(`cannot write ${temp}`),
      });
      // link() creates the name only if it does not exist: the lock appears whole, or not at all.
      const linked = yield* Effect.tryPromise({
        try: () =>
          link(temp, file).then(() => true, (e) => (code(e) === "EEXIST" ? false : Promise.reject(e))),
        catch: fail(`cannot create ${file}`),
      }).pipe(Effect.ensuring(Effect.promise(() => rm(temp, { force: true }))));
      if (linked) return { file, holder: me, recovered, created };
      const holder = yield* readHolder(dir, file);
      if (holder === undefined) continue; // released between our attempt and the read
      const sameHost = holder.host === me.host;
      if (!sameHost || !holderGone(holder)) {
        return yield* new RunFolderLocked({ dir, lockFile: file, holder, sameHost });
      }
      yield* setAsideStale(dir, file, holder, me.token);
      recovered =
        `${dir}: removed a stale lock: PID ${holder.pid} on ${holder.host} (started ${holder.startedAt}) is gone`;
    }
    return yield* new RunFolderError({ dir, reason: `could not take ${file}: other trains keep taking it` });
  });
  return Effect.acquireRelease(acquire, (held) => release(dir, held.file, held.holder.token, held.created))
    .pipe(Effect.map(({ file, holder, recovered }) => ({ file, holder, recovered })));
};

/**
 * Removes a stale lock without removing a fresh one that another process put there meanwhile: the
 * file is renamed aside first and checked to be the stale holder's; a fresh one is linked back.
 */
const setAsideStale = (dir: string, file: string, stale: LockHolder, token: string) =>
  Effect.gen(function* () {
    const aside = `${file}.stale-${process.pid}-${token}`;
    const moved = yield* Effect.tryPromise({
      try: () =>
        rename(file, aside).then(() => true, (e) => (code(e) === "ENOENT" ? false : Promise.reject(e))),
      catch: (e) => new RunFolderError({ dir, reason: `cannot remove the stale ${file}: ${describe(e)}` }),
    });
    if (!moved) return;
    const text = yield* Effect.promise(() => readFile(aside, "utf8").catch(() => ""));
    if (parseHolder(text)?.token !== stale.token) {
      yield* Effect.promise(() => link(aside, file).catch(() => undefined));
    }
    yield* Effect.promise(() => rm(aside, { force: true }));
  });

/** Removes the lock if it is still ours, then the folder if this run created it and left it empty. */
const release = (dir: string, file: string, token: string, created: boolean) =>
  Effect.promise(async () => {
    const text = await readFile(file, "utf8").catch(() => "");
    if (parseHolder(text)?.token === token) await rm(file, { force: true });
    if (created) await rmdir(dir).catch(() => undefined);
  });
