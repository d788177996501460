/**
 * `deno task bench ab`: one change measured before and after on the same machine at the same time. Two
 * sides — each a kappa tree (`.`, the checkout that runs this, or a commit, `git archive`d into a temporary
 * folder) with runtime options (`HEAD~1`, `.`, `.,nchwc=false`) — train bench perf's ViT or the MobileNetV2
 * model in one process, each in its own ONNX Runtime session, their steps alternating (A B B A …), so both
 * see the same background load; a fresh process per round. Prints per-round medians, the pooled medians,
 * the median of the per-pair ratios B ÷ A and the other processes' load, and checks that both sides' loss
 * before step 1 agrees.
 *
 *   deno task bench ab --a=HEAD~1 --b=. [--model=vit|mobilenet] [--threads=1,2] [--rounds=3] [--steps=8]
 */
import { fileURLToPath } from "node:url";
import { summarize } from "../figures/stats.ts";
import { fixed, formatMs, table } from "../figures/markdown.ts";
import { withLoad } from "./load.ts";

const log = (line: string) => console.error(`bench ab: ${line}`);
const flag = (args: readonly string[], name: string) =>
  args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const REPO = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const CHILD = fileURLToPath(new URL("./ab_child.ts", import.meta.url));

/** A side as written on the command line: a tree (`.` or a git revision) and `key=value` runtime options. */
export interface SideSpec {
  readonly label: string;
  readonly revision: string;
  readonly options: Record<string, unknown>;
}

/** Parses `rev[,key=value…]`; values are JSON where they parse as JSON (`false`, `2`), else strings. */
export const parseSide = (text: string): SideSpec => {
  const [revision, ...pairs] = text.split(",");
  const options: Record<string, unknown> = {};
  for (const pair of pairs) {
    const [key, raw = ""] = pair.split("=");
    try {
      options[key] = JSON.parse(raw);
    } catch {
      options[key] = raw;
    }
  }
  return { label: text, revision: revision || ".", options };
};

/** The ratio B ÷ A of each alternating pair of steps, and their median. */
export const pairRatios = (a: readonly number[], b: readonly number[]): number[] =>
  a.slice(0, b.length).map((x, i) => b[i] / x);

const git = async (args: string[]): Promise<string> => {
  const out = await new Deno.Command("git", { args, cwd: REPO, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`git ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  return new TextDecoder().decode(out.stdout).trim();
};

/** The folder holding a side's tree: the checkout for `.`, else the revision exported without its config. */
const treeOf = async (revision: string, dir: string): Promise<string> => {
  if (revision === ".") return REPO;
  const commit = await git(["rev-parse", "--short", revision]);
  const tree = `${dir}/${commit}`;
  await Deno.mkdir(tree, { recursive: true });
  const archive = new Deno.Command("git", { args: ["archive", commit], cwd: REPO, stdout: "piped" }).spawn();
  const untar = new Deno.Command("tar", { args: ["-x", "-C", tree], stdin: "piped" }).spawn();
  await archive.stdout.pipeTo(untar.stdin);
  if (!(await untar.status).success || !(await archive.status).success) {
    throw new Error(`cannot export ${revision}`);
  }
  // Its modules resolve npm packages through this checkout's deno.json (one ONNX Runtime in the process).
  for (const f of ["deno.json", "deno.lock"]) await Deno.remove(`${tree}/${f}`).catch(() => {});
  return tree;
};

const loadAverage = async () => (await Deno.readTextFile("/proc/loadavg").catch(() => "NaN")).split(" ")[0];

export const main = async (args: string[]): Promise<void> => {
  const sides = [parseSide(flag(args, "a") ?? "HEAD~1"), parseSide(flag(args, "b") ?? ".")];
  const model = flag(args, "model") ?? "vit";
  const threadsList = (flag(args, "threads") ?? "1,2").split(",").map(Number);
  const rounds = Number(flag(args, "rounds") ?? 3);
  const steps = Number(flag(args, "steps") ?? 8), warmup = Number(flag(args, "warmup") ?? 2);
  const dir = await Deno.makeTempDir({ prefix: "kappa-ab-" });
  try {
    const trees = [await treeOf(sides[0].revision, dir), await treeOf(sides[1].revision, dir)];
    const out: string[] = [
      `A = \`${sides[0].label}\`, B = \`${
        sides[1].label
      }\`; ${model}; ${rounds} processes per T, each ${warmup} ` +
      `warm-up and ${steps} timed steps per side, alternating A B B A …`,
    ];
    for (const threads of threadsList) {
      const rows: { round: string; a: number; b: number; pair: number; load: number; avg: string }[] = [];
      const all = { a: [] as number[], b: [] as number[], pairs: [] as number[], lossGap: 0 };
      for (let round = 1; round <= rounds; round++) {
        log(`T=${threads}, round ${round}/${rounds}…`);
        const before = await loadAverage();
        const request = {
          sides: sides.map((s, i) => ({ tree: trees[i], options: s.options })),
          model,
          threads,
          warmup,
          steps,
        };
        const { result, load } = await withLoad(async () => {
          const r = await new Deno.Command(Deno.execPath(), {
            args: ["run", "-A", "--config", `${REPO}/deno.json`, CHILD, JSON.stringify(request)],
            stdout: "piped",
            stderr: "piped",
          }).output();
          if (!r.success) throw new Error(new TextDecoder().decode(r.stderr).slice(-2000));
          return JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").at(-1)!) as {
            ms: number[][];
            losses: number[][];
          };
        });
        const [a, b] = result.ms;
        const pairs = pairRatios(a, b);
        all.a.push(...a);
        all.b.push(...b);
        all.pairs.push(...pairs);
        all.lossGap = Math.max(
          all.lossGap,
          Math.abs(result.losses[1][0] - result.losses[0][0]) / result.losses[0][0],
        );
        rows.push({
          round: String(round),
          a: summarize(a).median,
          b: summarize(b).median,
          pair: summarize(pairs).median,
          load: load.cores,
          avg: `${before} → ${await loadAverage()}`,
        });
      }
      rows.push({
        round: "pooled",
        a: summarize(all.a).median,
        b: summarize(all.b).median,
        pair: summarize(all.pairs).median,
        load: NaN,
        avg: "",
      });
      out.push(
        "",
        `T = ${threads} (loss before step 1: largest relative difference A/B ${
          all.lossGap.toExponential(1)
        })`,
        "",
        table<(typeof rows)[number]>([
          { header: "round", cell: (r) => r.round },
          { header: "A median ms", cell: (r) => formatMs(r.a) },
          { header: "B median ms", cell: (r) => formatMs(r.b) },
          { header: "B ÷ A (medians)", cell: (r) => fixed(r.b / r.a, 3) },
          { header: "median pair ratio B ÷ A", cell: (r) => fixed(r.pair, 3) },
          { header: "other load, cores", cell: (r) => fixed(r.load, 2) },
          { header: "load average", cell: (r) => r.avg },
        ], rows),
      );
    }
    console.log(out.join("\n"));
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
};
