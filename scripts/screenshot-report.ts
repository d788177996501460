/**
 * Screenshot of an HTML file in headless Chromium (Debian package `chromium`), to look at a report the
 * way a person would.
 *
 *   npx --yes deno@2.9.6 run -A scripts/screenshot-report.ts runs/x/report.html /tmp/report.png [1280,2000]
 *
 * Chromium runs offline-minded (no sync, updates or background networking) with a fresh profile in a
 * temp folder, removed afterwards.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const CANDIDATES = ["chromium", "chromium-browser", "google-chrome"];

/** The first Chromium binary on PATH, or undefined. */
export const findChromium = async (): Promise<string | undefined> => {
  for (const name of CANDIDATES) {
    const { success } = await new Deno.Command("sh", { args: ["-c", `command -v ${name}`], stdout: "null" })
      .output();
    if (success) return name;
  }
  return undefined;
};

export const screenshotHtml = async (
  htmlFile: string,
  pngFile: string,
  { width = 1280, height = 2000 }: { width?: number; height?: number } = {},
): Promise<void> => {
  const chromium = await findChromium();
  if (chromium === undefined) {
    throw new Error(
      `no Chromium found (tried ${CANDIDATES.join(", ")}); install it with: apt-get install -y chromium`,
    );
  }
  const profile = await mkdtemp(join(tmpdir(), "kappa-chromium-"));
  try {
    const { code, stderr } = await new Deno.Command(chromium, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        `--user-data-dir=${profile}`,
        `--screenshot=${resolve(pngFile)}`,
        `--window-size=${width},${height}`,
        pathToFileURL(resolve(htmlFile)).href,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (code !== 0) {
      throw new Error(`${chromium} exited with ${code}: ${new TextDecoder().decode(stderr).slice(-2000)}`);
    }
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
};

if (import.meta.main) {
  const [html, png, size] = Deno.args;
  if (!html || !png) {
    console.error("usage: screenshot-report.ts <report.html> <out.png> [width,height]");
    Deno.exit(2);
  }
  const [width, height] = (size ?? "1280,2000").split(",").map(Number);
  await screenshotHtml(html, png, { width, height });
  console.log(`wrote ${png}`);
}
