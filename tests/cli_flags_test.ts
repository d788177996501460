/**
 * Every numeric flag of every command has bounds (cli/flag_schema.ts) and every path is valid UTF-8: a
 * value outside is one line naming the flag, exit 1, and nothing is written (no run folder).
 */
import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { cli } from "./cli_runner.ts";
import { assertEquals } from "./assert.ts";
import { tinyExperiment } from "./fixtures/tiny_experiment.ts";
import { experimentJson } from "../dsl/experiment.ts";

const IMAGE = "../shared/data/camvid/images/val/0016E5_07959.jpg";
/** The documented maximum of --threads and --workers: 4 × the cores, at most 256. */
const MAX_THREADS = Math.min(256, 4 * navigator.hardwareConcurrency);
const threadsText = `an integer from 1 to ${MAX_THREADS} (4 × the CPU cores, at most 256)`;
const workersText = `an integer from 0 to ${MAX_THREADS} (4 × the CPU cores, at most 256)`;
const hint = (command: string) => `; see npx --yes deno@2.9.6 task ${command} --help`;

Deno.test("every numeric flag of every command is refused out of its bounds, naming it, before anything is written", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-flags-"));
  try {
    const spec = join(dir, "tiny.json");
    await writeFile(spec, experimentJson(tinyExperiment({ steps: 2 })));
    const out = join(dir, "run");
    const train = (...flags: string[]) => ["train", spec, "--out", out, ...flags];
    const cases: [string[], string][] = [
      [train("--steps", "-5"), "train: --steps -5: must be an integer from 1 to 10,000,000"],
      [train("--steps", "0"), "train: --steps 0: must be an integer from 1 to 10,000,000"],
      [train("--steps", "1e12"), "train: --steps 1000000000000: must be an integer from 1 to 10,000,000"],
      [train("--extend-steps", "0"), "train: --extend-steps 0: must be an integer from 1 to 10,000,000"],
      [train("--seed", "-1"), "train: --seed -1: must be an integer from 0 to 4,294,967,295"],
      [train("--seed", "4294967296"), "train: --seed 4294967296: must be an integer from 0 to 4,294,967,295"],
      [train("--eval-limit", "0"), "train: --eval-limit 0: must be an integer from 1 to 10,000,000"],
      [train("--threads", "0"), `train: --threads 0: must be ${threadsText}`],
      [train("--threads", "-1"), `train: --threads -1: must be ${threadsText}`],
      [train("--threads", "99999"), `train: --threads 99999: must be ${threadsText}`],
      [train("--workers", "-1"), `train: --workers -1: must be ${workersText}`],
      [train("--workers", "99999"), `train: --workers 99999: must be ${workersText}`],
      [["eval", out, "--limit", "0"], "eval: --limit 0: must be an integer from 1 to 10,000,000"],
      [["eval", out, "--threads", "99999"], `eval: --threads 99999: must be ${threadsText}`],
      [["eval", out, "--workers", "-2"], `eval: --workers -2: must be ${workersText}`],
      [
        ["predict", out, IMAGE, "--out", out, "--threads", "0"],
        `predict: --threads 0: must be ${threadsText}`,
      ],
      [
        ["export", out, join(dir, "m.onnx"), "--calibration-images", "0"],
        "export: --calibration-images 0: must be an integer from 1 to 10,000,000",
      ],
      [["classify", spec, IMAGE, "--top", "0"], "classify: --top 0: must be an integer from 1 to 100,000"],
      [["classify", spec, IMAGE, "--threads", "-1"], `classify: --threads -1: must be ${threadsText}`],
      [
        ["quickstart", "--out", out, "--steps", "-5"],
        "quickstart: --steps -5: must be an integer from 1 to 10,000,000",
      ],
      [
        ["quickstart", "--out", out, "--threads", "99999"],
        `quickstart: --threads 99999: must be ${threadsText}`,
      ],
      [["quickstart", "--out", out, "--workers", "-1"], `quickstart: --workers -1: must be ${workersText}`],
      [["web", out, "--port", "70000"], "web: --port 70000: must be an integer from 0 to 65,535"],
      [["web", out, "--steps", "0"], "web: --steps 0: must be an integer from 1 to 100,000"],
      [["web", out, "--shard-batches", "0"], "web: --shard-batches 0: must be an integer from 1 to 10,000"],
    ];
    for (const [args, line] of cases) {
      const r = await cli(...args);
      const command = args[0];
      assertEquals([r.code, r.stderr, r.stdout], [1, line + hint(command) + "\n", ""], args.join(" "));
      assertEquals(existsSync(out), false, `${args.join(" ")} wrote ${out}`);
    }
    assertEquals(readdirSync(dir), ["tiny.json"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("a path that is not valid UTF-8 is refused, naming the flag, and nothing is written", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-utf8-"));
  try {
    // The shell passes the bytes "caf\xe9" (Latin-1 é); Deno reads them as "caf\uFFFD".
    const script =
      `exec "$0" run -A cli/main.ts train tests/fixtures/tiny_experiment.ts --out "$(printf '%s/caf\\351' "$1")"`;
    const out = await new Deno.Command("bash", {
      args: ["-c", script, Deno.execPath(), dir],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(
      [out.code, stderr],
      [
        1,
        `train: --out ${dir}/caf\uFFFD: is not valid UTF-8 (Deno would read or write it with U+FFFD in place ` +
        `of each bad byte); use a UTF-8 name${hint("train")}\n`,
      ],
    );
    assertEquals(readdirSync(dir), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("many unexpected arguments are summed up, not all listed", async () => {
  const r = await cli("spec", "a.json", ...Array.from({ length: 50 }, (_, i) => `extra-${i}.json`));
  assertEquals(
    r.stderr,
    `spec: unexpected arguments "extra-0.json", "extra-1.json", "extra-2.json" and 47 more${hint("spec")}\n`,
  );
});
