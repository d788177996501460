import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { assertEquals } from "./assert.ts";
import { withTempDir } from "./data_fixtures.ts";
import { recordSection } from "../figures/markdown.ts";

Deno.test("bench: recordSection creates the file, then replaces its section in place, other sections kept", () =>
  withTempDir(async (dir) => {
    const file = join(dir, "BENCHMARKS.md");
    await recordSection(file, "Data pipeline", "run 1");
    assertEquals(await readFile(file, "utf8"), "# Benchmarks\n\n## Data pipeline\n\nrun 1\n");
    await writeFile(file, "# Benchmarks\n\n## Engine\n\nx\n\n## Data pipeline\n\nrun 1\n\n## Metrics\n\ny\n");
    await recordSection(file, "Data pipeline", "run 2\n\n### detail\n\nz");
    assertEquals(
      await readFile(file, "utf8"),
      "# Benchmarks\n\n## Engine\n\nx\n\n## Data pipeline\n\nrun 2\n\n### detail\n\nz\n\n## Metrics\n\ny\n",
    );
  }));
