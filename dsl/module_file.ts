/**
 * Importing a spec written as a `.ts` module, with a failure said the way an editor says it: where
 * (`file:line:column`) and what (`SyntaxError: Expected ',', got 'model'`). Deno puts the location of a
 * syntax error in the error's message and that of an error thrown while the module runs in its stack;
 * both are `file://` URLs.
 */
import { isAbsolute, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** Why a module could not be imported: the first line of the error, and where it is when known. */
export interface ImportFailure {
  /** `file:line:column` of the error, the file written as the user gave it when it is the module itself. */
  readonly location?: string;
  /** Whether `location` is in the imported module itself (rather than in a module it imports). */
  readonly inModule: boolean;
  /** `SyntaxError: Expected ',', got 'model'`, `TypeError: Cannot read properties of undefined (…)`. */
  readonly text: string;
}

/** Imports `file` (a path) as an ES module. */
export const importModule = (file: string): Promise<Record<string, unknown>> =>
  import(pathToFileURL(resolve(file)).href);

const LOCATION = /(file:\/\/[^\s)]+?):(\d+):(\d+)/g;

/** A path as this process's folder sees it: relative when inside it, absolute otherwise. */
const shown = (path: string) => {
  const inside = relative(Deno.cwd(), path);
  return inside === "" || inside.startsWith("..") || isAbsolute(inside) ? path : inside;
};

/**
 * What went wrong importing `file` (see `ImportFailure`). Of the places the error names, the first in the
 * module itself is preferred (a spec constructor that throws is called from a line of the experiment),
 * else the first of all (a syntax error in a module the experiment imports).
 */
export const importFailure = (e: unknown, file: string): ImportFailure => {
  const error = e instanceof Error ? e : new Error(String(e));
  const first = error.message.split("\n")[0];
  const text = /^\w*(Error|Exception)\b/.test(first) ? first : `${error.name}: ${first}`;
  const places = [...`${error.message}\n${error.stack ?? ""}`.matchAll(LOCATION)].map((m) => ({
    path: fileURLToPath(m[1]),
    line: m[2],
    column: m[3],
  }));
  const own = resolve(file);
  const place = places.find((p) => p.path === own) ?? places[0];
  if (!place) return { text, inModule: false };
  const inModule = place.path === own;
  return { location: `${inModule ? file : shown(place.path)}:${place.line}:${place.column}`, inModule, text };
};
