/**
 * The README's picture of kappa's page: serves a run (as `deno task web` does), segments a CamVid val
 * frame, trains a few steps in the tab and saves a screenshot.
 *
 *   npx --yes deno@2.9.6 run -A scripts/screenshot-web.ts runs/<run> results/web-page.png [steps]
 */
import { Effect, Exit, Scope } from "effect";
import { writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { launchBrowser } from "../web/browser.ts";
import { serveWeb } from "../web/server.ts";
import { webSource } from "../web/sources.ts";

const FRAME = "../shared/data/camvid/images/val/0016E5_08157.jpg";

if (import.meta.main) {
  const [run, png, stepsArg] = Deno.args;
  if (!run || !png) {
    console.error("usage: screenshot-web.ts <run-dir> <out.png> [steps]");
    Deno.exit(2);
  }
  const steps = Number(stepsArg ?? 3);
  const scope = Effect.runSync(Scope.make());
  const browser = await launchBrowser();
  try {
    const served = await Effect.runPromise(webSource(run, undefined, { shardBatches: 2, steps: 20 }));
    const server = await Effect.runPromise(Scope.provide(serveWeb(served), scope));
    const page = await browser.open(server.url, { width: 1100, height: 1330 });
    await page.waitFor(`globalThis.kappaPage?.status === "ready"`, 600_000);
    await page.setInputFiles("#photo-input", [resolve(FRAME)]);
    await page.waitFor("kappaPage.result !== undefined", 600_000);
    await page.waitFor(`kappaPage.training.status === "ready"`, 600_000);
    await page.evaluate(`document.getElementById("train-steps").value = "${steps}";
      document.getElementById("train-start").click()`);
    await page.waitFor(
      `kappaPage.training.status === "idle" && kappaPage.training.steps.length === ${steps}`,
      3_600_000,
    );
    await page.waitFor(`!document.getElementById("use-tuned").disabled`, 600_000);
    // Hover the middle of the picture, so the read-out shows a class.
    await page.evaluate(
      `(() => { const c = document.getElementById("overlay"); const r = c.getBoundingClientRect();
      c.dispatchEvent(new MouseEvent("mousemove", { clientX: r.x + r.width * 0.5, clientY: r.y + r.height * 0.7 })); })()`,
    );
    await writeFile(png, await page.screenshot());
    console.log(`wrote ${png}`);
  } finally {
    await browser.close();
    await Effect.runPromise(Scope.close(scope, Exit.void));
  }
}
