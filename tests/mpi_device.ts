/**
 * Whether MPI (Open MPI's mpirun and libmpi) and a Slurm cluster are here, for the tests that start ranks.
 * Without them such tests are skipped and say why in their names; with KAPPA_EXPECT_MPI=1 (set by CI after
 * .ci/setup installs Open MPI) a missing mpirun fails them instead, and with KAPPA_EXPECT_SLURM=1 (set by CI
 * after .ci/setup-slurm) a Slurm that does not answer fails the srun tests.
 */
export const EXPECT_MPI = "KAPPA_EXPECT_MPI", EXPECT_SLURM = "KAPPA_EXPECT_SLURM";

const runs = async (cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> => {
  try {
    const o = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    return { ok: o.success, out: new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr) };
  } catch (e) {
    return { ok: false, out: e instanceof Deno.errors.NotFound ? `no ${cmd} on PATH` : String(e) };
  }
};

const expected = (variable: string, file: string, what: string, reason: string): string => {
  if (Deno.env.get(variable) === "1") throw new Error(`${file}: ${variable}=1 but ${what}: ${reason}`);
  console.error(`${file}: ${what} tests skipped: ${reason}`);
  return reason;
};

/** Undefined when mpirun runs; otherwise why not. Throws when CI expects MPI. */
export const mpiUnavailable = async (file: string): Promise<string | undefined> => {
  const r = await runs("mpirun", ["--version"]);
  if (r.ok) return undefined;
  return expected(
    EXPECT_MPI,
    file,
    "MPI",
    `mpirun does not run (${r.out.split("\n")[0]}); apt install openmpi-bin`,
  );
};

/** Undefined when a Slurm controller answers with a usable node; otherwise why not. */
export const slurmUnavailable = async (file: string): Promise<string | undefined> => {
  const r = await runs("sinfo", ["-h", "-o", "%T"]);
  const states = r.out.split("\n").map((s) => s.trim()).filter((s) => s);
  if (r.ok && states.some((s) => /^(idle|mixed|allocated|completing)/.test(s))) return undefined;
  return expected(
    EXPECT_SLURM,
    file,
    "Slurm",
    r.ok
      ? `no usable Slurm node (sinfo: ${states.join(", ") || "none"})`
      : `no Slurm answers (${r.out.split("\n")[0]})`,
  );
};

/** A test's name, carrying the reason when it is skipped. */
export const skippedName = (name: string, unavailable: string | undefined): string =>
  unavailable === undefined ? name : `${name} [skipped: ${unavailable}]`;
