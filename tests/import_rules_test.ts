/**
 * The README's architecture, checked on the source tree: which folder may import which (the data flow
 * spec → interpreter → layers → plan IR → runtime), and no import cycles between files (`import type`
 * included: a type-only cycle still ties the modules together).
 */
import { assertEquals } from "./assert.ts";
import { dirname, join, normalize, relative } from "node:path";
import { readdirSync, readFileSync, statSync } from "node:fs";

const ROOT = normalize(join(dirname(new URL(import.meta.url).pathname), ".."));

/**
 * Folder → the kappa folders its files may import (its own folder always). `mod` is the root `mod.ts`,
 * `profiling` the root `profiling.ts`; `tests/` may import anything.
 */
export const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  core: [],
  dsl: [],
  io: ["core"],
  ir: ["core"],
  onnx: ["ir", "core"],
  runtime: ["ir", "onnx", "core"],
  host: ["ir", "core"],
  weights: ["io", "core"],
  layers: ["dsl", "ir", "core"],
  interpret: ["dsl", "layers", "ir", "host", "weights", "io", "core"],
  data: ["dsl", "io", "core"],
  eval: ["dsl", "interpret", "ir", "onnx", "runtime", "data", "io", "core"],
  kinds: ["dsl", "interpret", "ir", "onnx", "runtime", "host", "data", "eval", "io", "core"],
  train: [
    "dsl",
    "interpret",
    "kinds",
    "layers",
    "ir",
    "onnx",
    "runtime",
    "host",
    "data",
    "eval",
    "weights",
    "io",
    "core",
  ],
  cli: [
    "dsl",
    "interpret",
    "kinds",
    "ir",
    "onnx",
    "runtime",
    "data",
    "eval",
    "train",
    "weights",
    "io",
    "core",
    "experiments",
    "web",
  ],
  mod: [
    "dsl",
    "interpret",
    "kinds",
    "layers",
    "ir",
    "onnx",
    "runtime",
    "host",
    "data",
    "eval",
    "train",
    "weights",
    "io",
    "core",
  ],
  experiments: ["dsl"],
  // Checks against the official implementations: kappa's layers and losses side by side with PyTorch's,
  // so they reach inside like tests do; they write RESULTS.md's parity table (figures/).
  parity: [
    "dsl",
    "interpret",
    "layers",
    "ir",
    "onnx",
    "runtime",
    "host",
    "data",
    "eval",
    "io",
    "core",
    "figures",
  ],
  // The profiling API: what bench/ and grids/ need beyond mod.ts (internal but supported).
  profiling: [
    "dsl",
    "interpret",
    "kinds",
    "layers",
    "ir",
    "onnx",
    "runtime",
    "host",
    "data",
    "eval",
    "train",
    "weights",
    "io",
    "core",
  ],
  // What bench/ and grids/ share to write BENCHMARKS.md and RESULTS.md and to read their command lines;
  // neither imports the other. The bounds of flags are the specs' and the CLI's (dsl/bounds.ts).
  figures: ["dsl"],
  bench: ["mod", "profiling", "experiments", "figures", "web", "web/page"],
  grids: ["mod", "profiling", "experiments", "figures"],
  scripts: ["dsl", "interpret", "ir", "onnx", "runtime", "data", "eval", "train", "io", "core", "web"],
  // The page's server (what it serves comes from a run, an experiment or an export) and the headless-browser
  // driver of the web tests and `bench web`.
  web: ["dsl", "data", "eval", "kinds", "train", "io", "core"],
  // The page itself runs in the browser: it imports nothing of kappa's but the seeded random numbers
  // (dropout noise drawn exactly as training draws it).
  "web/page": ["core"],
};

/**
 * npm packages that only some folders may load: ONNX Runtime is the runtime's (building a graph or a
 * plan loads no ONNX Runtime), the ONNX protobuf schema is the ONNX encoding's. Folders not listed
 * under a package may not import it; `tests/` and `bench/` (whose timings read ONNX Runtime's own
 * sessions and version) may import any package.
 */
export const NPM_ALLOWED: Readonly<Record<string, readonly string[]>> = {
  "onnxruntime-node": ["runtime"],
  "onnx-proto": ["onnx"],
  // The page's types only: the page loads onnxruntime-web from the server at run time (web/page/ort.ts).
  "onnxruntime-web": ["web/page"],
};

const SKIP = new Set(["node_modules", "runs", ".git", "scratch", "results"]);

const sourceFiles = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    if (SKIP.has(name) || name.startsWith(".")) return [];
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|js)$/.test(name) ? [path] : [];
  });

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["'](\.{1,2}\/[^"']+)["']/g;

/** Repo-relative imports of a file (relative specifiers only: npm and node built-ins are not kappa's). */
const importsOf = (file: string): string[] => {
  const text = readFileSync(file, "utf8").replace(/^\s*(\/\/.*|\*.*|\/\*.*)$/gm, "");
  return [...text.matchAll(IMPORT)].map((m) => relative(ROOT, normalize(join(dirname(file), m[1]))));
};

const NPM_IMPORT =
  /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["']((?:npm:)?(?:@[\w.-]+\/)?[\w.-]+)[^"']*["']/g;

/** The npm packages a file imports (bare specifiers; node: built-ins and relative paths excluded). */
const packagesOf = (file: string): string[] => {
  const text = readFileSync(file, "utf8").replace(/^\s*(\/\/.*|\*.*|\/\*.*)$/gm, "");
  return [...text.matchAll(NPM_IMPORT)].map((m) => m[1].replace(/^npm:/, "")).filter((p) =>
    !p.startsWith("node:")
  );
};

/** A file's folder for the rules: its top-level folder, except the page (`web/page/`), which has a rule of its own. */
const folderOf = (rel: string) =>
  rel.startsWith("web/page/") ? "web/page" : rel.includes("/") ? rel.split("/")[0] : rel.replace(/\.ts$/, "");

const graph = new Map(sourceFiles(ROOT).map((f) => [relative(ROOT, f), importsOf(f)]));

Deno.test("import rules: every folder imports only the folders the architecture allows", () => {
  const broken: string[] = [];
  for (const [file, imports] of graph) {
    const from = folderOf(file);
    if (from === "tests") continue;
    const allowed = ALLOWED[from];
    if (!allowed) {
      broken.push(`${file}: folder "${from}" has no import rule (add it to ALLOWED and the README)`);
      continue;
    }
    for (const target of imports) {
      const to = folderOf(target);
      if (to !== from && !allowed.includes(to)) broken.push(`${file} imports ${target} (${from} → ${to})`);
    }
  }
  assertEquals(broken, []);
});

Deno.test("import rules: ONNX Runtime and the ONNX schema are loaded only where the architecture says", () => {
  const broken: string[] = [];
  for (const file of graph.keys()) {
    const from = folderOf(file);
    if (from === "tests" || from === "bench") continue;
    for (const pkg of packagesOf(join(ROOT, file))) {
      const allowed = NPM_ALLOWED[pkg];
      if (allowed && !allowed.includes(from)) {
        broken.push(`${file} imports ${pkg} (only ${allowed.join(", ")} may)`);
      }
    }
  }
  assertEquals(broken, []);
});

Deno.test("import rules: building graphs and plans loads no ONNX Runtime (the module graph of ir/, layers/, interpret/)", async () => {
  // The static rules above, checked once more on what Deno actually resolves: `deno info` lists every
  // module an entry point loads, npm packages included.
  for (
    const entry of [
      "interpret/graphs.ts",
      "interpret/describe.ts",
      "interpret/data_parallel.ts",
      "ir/plan.ts",
      "host/matching_stage.ts",
      "host/all_reduce.ts",
    ]
  ) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", join(ROOT, entry)],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    // `modules` is what the entry loads; `npmPackages` lists the whole lock file, reachable or not.
    const modules = (JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: { specifier: string }[] })
      .modules.map((m) => m.specifier);
    assertEquals(modules.some((m) => m.endsWith(entry)), true, `deno info listed ${entry}`);
    assertEquals(modules.filter((m) => /onnxruntime|onnx-proto/.test(m)), [], `what ${entry} loads`);
    // Nor MPI: the data-parallel stages are built over a Collective that runtime/mpi.ts implements.
    assertEquals(modules.filter((m) => /\/runtime\//.test(m)), [], `what ${entry} loads of runtime/`);
  }
});

Deno.test("import rules: only runtime/mpi.ts opens the MPI library", () => {
  const opens = [...graph.keys()].filter((f) =>
    !f.startsWith("tests/") && /Deno\.dlopen\(/.test(readFileSync(join(ROOT, f), "utf8")) &&
    /libmpi|MPI_/.test(readFileSync(join(ROOT, f), "utf8"))
  );
  assertEquals(opens, ["runtime/mpi.ts"]);
});

Deno.test("import rules: no import cycles between files", () => {
  // Tarjan's strongly connected components; a component of more than one file is a cycle.
  const index = new Map<string, number>(), low = new Map<string, number>(), onStack = new Set<string>();
  const stack: string[] = [], cycles: string[][] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next), low.set(v, next++), stack.push(v), onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) visit(w), low.set(v, Math.min(low.get(v)!, low.get(w)!));
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do (w = stack.pop()!), onStack.delete(w), component.push(w); while (w !== v);
      if (component.length > 1) cycles.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  assertEquals(cycles.map((c) => c.join(" ↔ ")), []);
});

Deno.test("import rules: the checker sees the tree (guards against a silently empty graph)", () => {
  assertEquals(graph.has("interpret/graphs.ts"), true);
  assertEquals(graph.get("interpret/graphs.ts")!.includes("interpret/segmenter.ts"), true);
  assertEquals(graph.get("dsl/experiment.ts")!.includes("dsl/model.ts"), true);
  assertEquals(graph.get("grids/ablation.ts")!.includes("mod.ts"), true);
  assertEquals(packagesOf(join(ROOT, "runtime/execute.ts")).includes("onnxruntime-node"), true);
});
