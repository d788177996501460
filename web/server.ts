/**
 * The page's HTTP server: static files on 127.0.0.1 only, every response cross-origin isolated (COOP
 * `same-origin` + COEP `require-corp`, so that onnxruntime-web may use wasm threads), nothing cached.
 *
 *   /                    the page (web/page/index.html, style.css)
 *   /app/<script>.js     the page's bundled scripts (web/bundle.ts)
 *   /ort/<file>          onnxruntime-web's .mjs and .wasm files from the pinned npm package (node_modules)
 *   /files/<name>        what web/sources.ts serves: manifest.json, model.onnx, the training export
 *
 * The server lives in an Effect scope: it stops when the scope closes (Ctrl-C included).
 */
import { Data, Effect } from "effect";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { bundlePage, PAGE_DIR } from "./bundle.ts";
import type { Served } from "./sources.ts";

/** onnxruntime-web's files, as `deno install` lays out the npm package. */
export const ORT_DIR = join(dirname(dirname(PAGE_DIR)), "node_modules", "onnxruntime-web", "dist");
const ORT_FILE = /^ort[\w.-]*\.(mjs|wasm)$/;
const STATIC = new Map([["/", "index.html"], ["/index.html", "index.html"], ["/style.css", "style.css"]]);

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  wasm: "application/wasm",
  json: "application/json",
  onnx: "application/octet-stream",
  safetensors: "application/octet-stream",
};

export const ISOLATION_HEADERS = {
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-embedder-policy": "require-corp",
  "cross-origin-resource-policy": "same-origin",
  "cache-control": "no-store",
} as const;

export class ServerError extends Data.TaggedError("ServerError")<{ readonly reason: string }> {
  override get message(): string {
    return `web: ${this.reason}`;
  }
}

const responder = (isolated: boolean) => (body: Uint8Array | string | null, name: string, status = 200) =>
  new Response(body as BodyInit | null, {
    status,
    headers: {
      ...(isolated ? ISOLATION_HEADERS : { "cache-control": "no-store" }),
      "content-type": TYPES[name.split(".").pop() ?? ""] ?? "text/plain; charset=utf-8",
    },
  });

export interface RunningServer {
  readonly url: string;
  readonly port: number;
}

export interface ServeOptions {
  /** The port on 127.0.0.1 (default 0: any free port). */
  readonly port?: number;
  /**
   * Send the cross-origin isolation headers (default true). Off, the page is served as a plain static host
   * would serve it: onnxruntime-web then runs on one thread, and the page says so (a test checks it).
   */
  readonly crossOriginIsolated?: boolean;
}

/** Serves `served` on 127.0.0.1 until the scope closes. */
export const serveWeb = (served: Served, { port = 0, crossOriginIsolated = true }: ServeOptions = {}) =>
  Effect.gen(function* () {
    const respond = responder(crossOriginIsolated);
    if (!existsSync(join(ORT_DIR, "ort.wasm.min.mjs"))) {
      return yield* new ServerError({
        reason: `no onnxruntime-web files in ${ORT_DIR}; run npx --yes deno@2.9.6 install`,
      });
    }
    const scripts = yield* bundlePage;
    const files = new Map(served.files);
    files.set("manifest.json", new TextEncoder().encode(JSON.stringify(served.manifest, null, 1)));
    const handler = async (req: Request): Promise<Response> => {
      if (req.method !== "GET" && req.method !== "HEAD") return respond("method not allowed", "txt", 405);
      const path = decodeURIComponent(new URL(req.url).pathname);
      const page = STATIC.get(path);
      if (page) return respond(await readFile(join(PAGE_DIR, page)), page);
      if (path.startsWith("/app/") && scripts.has(path.slice(5))) {
        return respond(scripts.get(path.slice(5))!, "x.js");
      }
      if (path.startsWith("/files/") && files.has(path.slice(7))) {
        return respond(files.get(path.slice(7))!, path.slice(7));
      }
      if (path.startsWith("/ort/") && ORT_FILE.test(path.slice(5))) {
        const file = join(ORT_DIR, path.slice(5));
        if (existsSync(file)) return respond(await readFile(file), file);
      }
      return respond(`${path}: not found`, "txt", 404);
    };
    const server = yield* Effect.acquireRelease(
      Effect.try({
        try: () => Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, handler),
        catch: (e) =>
          new ServerError({ reason: `cannot listen on 127.0.0.1:${port}: ${(e as Error).message}` }),
      }),
      (s) => Effect.promise(() => s.shutdown()),
    );
    const addr = server.addr as Deno.NetAddr;
    return { url: `http://127.0.0.1:${addr.port}/`, port: addr.port } satisfies RunningServer;
  });
