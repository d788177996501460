/** Runs kappa's command line as a user does (a subprocess of `cli/main.ts`) and returns its exit code and text. */
export const cli = (...args: string[]) => cliWith({}, ...args);

/** `cli` with extra environment variables. */
export const cliWith = async (options: { readonly env?: Record<string, string> }, ...args: string[]) => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli/main.ts", ...args],
    stdout: "piped",
    stderr: "piped",
    ...(options.env ? { env: options.env } : {}),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
};

/**
 * `npx --yes deno@2.9.6 task <args>` as a user types it in the folder `cwd` (a subfolder of the repository
 * or the repository itself): Deno finds deno.json above it and runs the task in the repository's folder.
 */
export const task = async (cwd: string, ...args: string[]) => {
  // As from a fresh shell in `cwd`: an INIT_CWD inherited from whatever started the tests (npx sets one)
  // would be kept by deno task as the user's folder.
  const { INIT_CWD: _, ...env } = Deno.env.toObject();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", ...args],
    cwd,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
};
