import { Effect } from "effect";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { assertEquals } from "./assert.ts";
import { withTempDir } from "./data_fixtures.ts";
import { recordSection } from "../bench/data.ts";

const section = (n: number) => `## Data pipeline\n\nrun ${n}\n\n<!-- /data-bench -->`;

Deno.test("bench data: the Data pipeline section is created, then replaced in place, other sections kept", () =>
  withTempDir(async (dir) => {
    const file = join(dir, "BENCHMARKS.md");
    await Effect.runPromise(recordSection(file, section(1)));
    assertEquals(await readFile(file, "utf8"), `# Benchmarks\n\n${section(1)}\n`);
    await writeFile(file, `# Benchmarks\n\n## Engine\n\nx\n\n${section(1)}\n\n## Metrics\n\ny\n`);
    await Effect.runPromise(recordSection(file, section(2)));
    assertEquals(
      await readFile(file, "utf8"),
      `# Benchmarks\n\n## Engine\n\nx\n\n${section(2)}\n\n## Metrics\n\ny\n`,
    );
  }));
