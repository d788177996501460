/**
 * Paths as the user typed them, wherever they typed the command. `deno task` runs every task in the
 * repository's folder (deno.json's), so `cd experiments && npx --yes deno@2.9.6 task describe
 * quickstart.ts` would look for `quickstart.ts` in the repository. The tasks pass the folder the user
 * typed in as `KAPPA_USER_CWD` (from Deno's `INIT_CWD`, deno.json), and every path argument and flag is
 * resolved against it (cli/flag_schema.ts). Paths *inside* specs (a dataset's root, pretrained weights)
 * keep their documented meaning: relative to the repository, where the process runs.
 *
 * Only the tasks set the variable, and it is read once and removed from this process's environment, so a
 * process the command starts does not inherit a stale one. Without it (`deno run cli/main.ts` typed in
 * any folder) the process's own folder is the user's, and paths are left as they are.
 */
import { isAbsolute, relative, resolve } from "node:path";

const VARIABLE = "KAPPA_USER_CWD";

const readOnce = (): string | undefined => {
  try {
    const dir = Deno.env.get(VARIABLE);
    Deno.env.delete(VARIABLE);
    return dir || undefined;
  } catch {
    return undefined; // no env permission: paths are the process's
  }
};

/** The folder the user typed the command in, when it is not this process's own. */
const userDir = readOnce();

/**
 * `path` resolved against the user's folder, written relative to this process's folder when it lies
 * inside it (`experiments/quickstart.ts`), absolute otherwise; unchanged when the folders are the same.
 */
export const userPath = (path: string): string => {
  if (userDir === undefined || isAbsolute(path)) return path;
  const cwd = Deno.cwd();
  if (resolve(userDir) === cwd) return path;
  const absolute = resolve(userDir, path);
  const inside = relative(cwd, absolute);
  return inside === ""
    ? "."
    : inside === ".." || inside.startsWith("../") || isAbsolute(inside)
    ? absolute
    : inside;
};
