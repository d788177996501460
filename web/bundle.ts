/**
 * The page's scripts: web/page/*.ts bundled for the browser by `deno bundle` (esbuild, fetched by Deno
 * from npm on first use), once per server start, into memory. onnxruntime-web is not bundled: the page
 * loads it from `/ort/` at run time (web/page/ort.ts).
 */
import { Data, Effect } from "effect";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Where the page's sources and static files live. */
export const PAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), "page");
/** The entry points and the names they are served as under `/app/`. */
const ENTRIES = { "main.js": "main.ts", "train_worker.js": "train_worker.ts" } as const;

export class BundleError extends Data.TaggedError("BundleError")<{ readonly reason: string }> {
  override get message(): string {
    return `web/page: cannot bundle the page's scripts: ${this.reason}`;
  }
}

/** The bundled scripts, by served name. */
export const bundlePage = Effect.gen(function* () {
  const out = yield* Effect.acquireRelease(
    Effect.promise(() => mkdtemp(join(tmpdir(), "kappa-web-"))),
    (dir) => Effect.promise(() => rm(dir, { recursive: true, force: true })),
  );
  const root = dirname(dirname(PAGE_DIR));
  const r = yield* Effect.promise(() =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "bundle",
        "--quiet",
        "--platform",
        "browser",
        "--format",
        "esm",
        "--outdir",
        out,
        ...Object.values(ENTRIES).map((f) => join(PAGE_DIR, f)),
      ],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output()
  );
  if (!r.success) {
    return yield* new BundleError({
      reason: new TextDecoder().decode(r.stderr).trim().split("\n").slice(-3).join(" "),
    });
  }
  const scripts = new Map<string, Uint8Array>();
  for (const [served, source] of Object.entries(ENTRIES)) {
    const file = join(out, source.replace(/\.ts$/, ".js"));
    scripts.set(served, yield* Effect.promise(() => readFile(file).then((b) => new Uint8Array(b))));
  }
  return scripts;
});
