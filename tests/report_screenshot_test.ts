/**
 * Renders a small report in headless Chromium and checks the screenshot is a real picture. `.ci/setup`
 * installs Chromium (`apt-get install -y chromium`); where none could be installed the test is skipped
 * and its name says why (`deno test --quiet` hides console output).
 */
import { Effect } from "effect";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertEquals } from "./assert.ts";
import { readImageRgb } from "../eval/png.ts";
import { writeReport } from "../train/report.ts";
import { findChromium, screenshotHtml } from "../scripts/screenshot-report.ts";

const chromium = await findChromium();
const noChromium = "no Chromium on PATH (tried chromium, chromium-browser, google-chrome); " +
  "run .ci/setup or apt-get install -y chromium";
if (chromium === undefined) console.log(`report_screenshot_test: skipping: ${noChromium}`);

Deno.test({
  name: "a report renders in headless Chromium" + (chromium === undefined ? ` (skipped: ${noChromium})` : ""),
  ignore: chromium === undefined,
  fn: async () => {
    const dir = await mkdtemp(join(tmpdir(), "kappa-shot-"));
    try {
      const lines = [10, 20, 30].map((step) =>
        JSON.stringify({
          kind: "train",
          step,
          epoch: 0,
          lr: 0.01,
          loss: 3 / step,
          terms: { pixel: 2 / step },
        })
      );
      await writeFile(join(dir, "metrics.jsonl"), lines.join("\n") + "\n");
      const report = await Effect.runPromise(writeReport(dir));
      const png = join(dir, "shot.png");
      await screenshotHtml(report, png, { width: 800, height: 600 });
      const { rgb, width, height } = await Effect.runPromise(readImageRgb(png));
      assertEquals([width, height], [800, 600]);
      // Not blank: the page background, white chart panels and dark text all appear.
      const distinct = new Set<number>();
      for (let i = 0; i < rgb.length; i += 3) distinct.add((rgb[i] << 16) | (rgb[i + 1] << 8) | rgb[i + 2]);
      assertEquals(distinct.size > 20, true, `only ${distinct.size} colors`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
});
