/**
 * Whether a Slurm cluster answers here, for tests that submit jobs. Without one (no sbatch on PATH, or no
 * controller: `.ci/setup-slurm` starts a one-node cluster), such tests are skipped and say why in their
 * names; with KAPPA_EXPECT_SLURM=1 (set by .ci/run after .ci/setup-slurm) a missing cluster fails them.
 */
export const EXPECT_SLURM = "KAPPA_EXPECT_SLURM";

const run = async (command: string, args: string[]) => {
  try {
    const out = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
    const dec = new TextDecoder();
    return { code: out.code, text: `${dec.decode(out.stdout)}${dec.decode(out.stderr)}`.trim() };
  } catch (e) {
    return { code: -1, text: e instanceof Deno.errors.NotFound ? `${command} is not on PATH` : String(e) };
  }
};

const probe = async (): Promise<string | undefined> => {
  const ping = await run("scontrol", ["ping"]);
  if (ping.code !== 0 || !/\bUP\b/.test(ping.text)) {
    return ping.code === -1
      ? ping.text
      : `no Slurm controller answers (scontrol ping: ${ping.text.split("\n")[0]})`;
  }
  const sbatch = await run("sbatch", ["--version"]);
  if (sbatch.code !== 0) return sbatch.text.split("\n")[0];
  const nodes = await run("sinfo", ["--noheader", "--format=%t"]);
  if (!nodes.text.split("\n").some((s) => /^(idle|mix|alloc)/.test(s.trim()))) {
    return `no node takes jobs (sinfo: ${nodes.text.replace(/\n/g, ", ") || "none"})`;
  }
  return undefined;
};

/** Undefined when a cluster takes jobs; otherwise why not. Throws when CI expects the cluster. */
export const slurmUnavailable = async (file: string): Promise<string | undefined> => {
  const reason = await probe();
  if (reason === undefined) return undefined;
  if (Deno.env.get(EXPECT_SLURM) === "1") {
    throw new Error(`${file}: ${EXPECT_SLURM}=1 but Slurm is unavailable: ${reason}; run .ci/setup-slurm`);
  }
  console.error(`${file}: Slurm tests skipped: ${reason}`);
  return reason;
};

/** A Slurm test's name, carrying the reason when it is skipped (`deno test --quiet` hides console output). */
export const slurmTestName = (name: string, unavailable: string | undefined): string =>
  unavailable === undefined ? name : `${name} [skipped: ${unavailable}]`;

/** Waits until none of `jobs` is in the queue any more (their tasks included); fails after `limitMs`. */
export const waitForJobs = async (jobs: readonly string[], limitMs = 120_000): Promise<void> => {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const q = await run("squeue", ["--noheader", "--array", "--format=%i"]);
    const listed = q.text.split("\n").map((l) => l.trim()).filter((id) =>
      jobs.some((j) => id === j || id.startsWith(`${j}_`))
    );
    if (q.code === 0 && listed.length === 0) return;
    if (Date.now() > deadline) throw new Error(`jobs ${jobs.join(", ")} still queued: ${listed.join(", ")}`);
    await new Promise((r) => setTimeout(r, 250));
  }
};

/** Cancels jobs (cleanup after a failed test). */
export const cancelJobs = async (jobs: readonly string[]): Promise<void> => {
  if (jobs.length) await run("scancel", [...jobs]);
};
