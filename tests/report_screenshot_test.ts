/**
 * Renders small reports in headless Chromium: the screenshot is a real picture, and in a narrow window the
 * example legends show every class name whole (wrapped, not cut), the validation axes read 0..100 % and
 * the mAP explanation is on the page (measured in the browser's own layout). `.ci/setup`
 * installs Chromium (`apt-get install -y chromium`); where none could be installed the test is skipped
 * and its name says why (`deno test --quiet` hides console output).
 */
import { Effect } from "effect";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertEquals } from "./assert.ts";
import { readImageRgb, writePng } from "../eval/png.ts";
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

/** Loads `html` in headless Chromium at `width`×900, runs `script` there and returns what it put in #probe. */
const measureInChromium = async (html: string, script: string, width: number): Promise<unknown> => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-probe-"));
  try {
    const file = join(dir, "probe.html");
    await writeFile(
      file,
      html.replace(
        "</body>",
        `<pre id="probe"></pre><script>document.getElementById("probe").textContent = ` +
          `JSON.stringify((() => { ${script} })());</script></body>`,
      ),
    );
    const out = await new Deno.Command(chromium!, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-sync",
        `--user-data-dir=${join(dir, "profile")}`,
        `--window-size=${width},900`,
        "--virtual-time-budget=2000",
        "--dump-dom",
        `file://${file}`,
      ],
      stdout: "piped",
      stderr: "null",
    }).output();
    const dom = new TextDecoder().decode(out.stdout);
    const probe = /<pre id="probe">([^<]*)<\/pre>/.exec(dom);
    if (probe === null) throw new Error(`no probe result in Chromium's DOM (exit ${out.code})`);
    return JSON.parse(
      probe[1].replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&"),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};

const LONG_NAMES = [
  "motorcyclist on the far sidewalk",
  "Wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww",
  "sky",
];

Deno.test({
  name: "report in a narrow Chromium window: legend names whole, percent axes 0..100, the mAP note shown" +
    (chromium === undefined ? ` (skipped: ${noChromium})` : ""),
  ignore: chromium === undefined,
  fn: async () => {
    const dir = await mkdtemp(join(tmpdir(), "kappa-shot-"));
    try {
      await writeFile(
        join(dir, "metrics.jsonl"),
        [
          JSON.stringify({ kind: "train", step: 500, epoch: 5, lr: 1e-6, loss: 0.5 }),
          JSON.stringify({
            kind: "eval",
            step: 500,
            split: "val",
            images: 101,
            units: "percent",
            mIoU: 45.93,
            mAP: 100,
          }),
        ].join("\n") + "\n",
      );
      await writeFile(
        join(dir, "eval-val.json"),
        JSON.stringify({
          split: "val",
          images: 101,
          units: "percent",
          step: 500,
          checkpoint: "c",
          mIoU: 45.93,
          mAcc: 60,
          aAcc: 90,
          mAP: 100,
          classes: LONG_NAMES.map((name) => ({ name, iou: 40, acc: 50 })),
          classesInEveryImage: LONG_NAMES,
          classesPresent: 3,
          mode: "whole",
        }),
      );
      await mkdir(join(dir, "examples"));
      for (const role of ["image", "label", "pred"]) {
        await Effect.runPromise(
          writePng(join(dir, "examples", `f-${role}.png`), new Uint8Array(48 * 36 * 3).fill(90), 48, 36),
        );
      }
      await writeFile(
        join(dir, "examples", "f-classes.json"),
        JSON.stringify({
          index: 50,
          of: 101,
          classes: LONG_NAMES.map((name, c) => ({
            class: c,
            name,
            color: [40 * c, 90, 200],
            labelPixels: 5,
            predPixels: 5,
          })),
        }),
      );
      const html = await readFile(await Effect.runPromise(writeReport(dir)), "utf8");
      const result = await measureInChromium(
        html,
        `const page = document.documentElement.clientWidth;
        const legend = [...document.querySelectorAll(".example-legend li")].map((li) => {
          const r = li.getBoundingClientRect();
          return { text: li.textContent, whole: li.scrollWidth <= li.clientWidth + 1 && r.right <= page + 0.5 };
        });
        const chart = document.querySelector('svg[aria-label="Validation mAP"]');
        const box = chart.getBoundingClientRect();
        const ticks = [...chart.querySelectorAll("text.tick")].map((t) => {
          const r = t.getBoundingClientRect();
          return { label: t.textContent, inside: r.left >= box.left && r.right <= box.right && r.bottom <= box.bottom };
        });
        const note = document.getElementById("map-note");
        return { legend, ticks, note: note ? note.offsetHeight > 0 && note.textContent : null };`,
        500,
      ) as {
        legend: { text: string; whole: boolean }[];
        ticks: { label: string; inside: boolean }[];
        note: string | null;
      };
      assertEquals(result.legend, LONG_NAMES.map((text) => ({ text, whole: true })));
      assertEquals(result.ticks.map((t) => t.label), [
        "0",
        "20",
        "40",
        "60",
        "80",
        "100",
        "0",
        "100",
        "200",
        "300",
        "400",
        "500",
      ]);
      assertEquals(result.ticks.every((t) => t.inside), true, JSON.stringify(result.ticks));
      assertEquals(
        typeof result.note === "string" && result.note.startsWith("mAP 100.00 (val, 101 images, step 500)"),
        true,
        String(result.note),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
});
