/**
 * Slurm's own commands, as the grids use them: `sbatch --parsable` to submit (the job id back), `squeue`
 * to see which array tasks are pending or running. Nothing here schedules anything; Slurm does.
 */
import { Data } from "effect";
import { statSync } from "node:fs";
import { delimiter, join } from "node:path";

/** Slurm cannot be used from here, or refused a job: one line saying which and why. */
export class SlurmError extends Data.TaggedError("SlurmError")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason;
  }
}

/** The executable `name` on PATH, or undefined. */
export const onPath = (name: string, path = Deno.env.get("PATH") ?? ""): string | undefined =>
  path.split(delimiter).filter((d) => d !== "").map((d) => join(d, name)).find((file) => {
    try {
      const s = statSync(file);
      return s.isFile() && (s.mode & 0o111) !== 0;
    } catch {
      return false;
    }
  });

/** Fails with one line when there is no sbatch to submit with. */
export const requireSbatch = (): void => {
  if (onPath("sbatch") !== undefined) return;
  throw new SlurmError({
    reason: "--slurm: sbatch is not on PATH (no Slurm client here); submit from a machine with Slurm " +
      "(a login node), or leave out --slurm to train the runs here",
  });
};

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes).trim();

/** `sbatch --parsable <args>`: the job id, or a SlurmError with sbatch's own message. */
export const sbatch = async (args: readonly string[]): Promise<string> => {
  const out = await new Deno.Command("sbatch", {
    args: ["--parsable", ...args],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const text = decode(out.stdout);
  if (out.code !== 0 || !/^\d+/.test(text)) {
    const why = decode(out.stderr).split("\n").filter((l) => l.trim() !== "").join("; ") ||
      `exit ${out.code}`;
    throw new SlurmError({ reason: `sbatch refused the job: ${why}` });
  }
  // `<id>` or `<id>;<cluster>`.
  return text.split(";")[0];
};

/** A job or array task in Slurm's queue: its state (PENDING, RUNNING, …) and Slurm's reason. */
export interface QueueEntry {
  readonly state: string;
  readonly reason: string;
}

/**
 * The queue as `squeue` lists it, one entry per job or array task (`123` or `123_4`: pending array tasks
 * are listed one by one); a SlurmError when there is no squeue or no controller answers.
 */
export const queue = async (): Promise<Map<string, QueueEntry>> => {
  if (onPath("squeue") === undefined) throw new SlurmError({ reason: "squeue is not on PATH" });
  const out = await new Deno.Command("squeue", {
    args: ["--noheader", "--array", "--format=%i|%T|%r"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    throw new SlurmError({ reason: `squeue: ${decode(out.stderr).split("\n")[0] || `exit ${out.code}`}` });
  }
  const entries = new Map<string, QueueEntry>();
  for (const line of decode(out.stdout).split("\n").filter((l) => l.includes("|"))) {
    const [id, state, reason] = line.trim().split("|");
    entries.set(id, { state, reason });
  }
  return entries;
};

/** Whether a queue state will still run (or is running): not finished, failed or cancelled. */
export const isQueued = (state: string): boolean =>
  ["PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "RESIZING", "SUSPENDED"]
    .includes(state);
