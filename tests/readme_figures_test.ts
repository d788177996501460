/**
 * Every timing figure in the README names the CPU it was measured on: kappa runs on CPUs that differ by a
 * factor of two per training step (AVX-512 vs AVX2-only AMD EPYC), so a bare "0.53 s per step" misleads.
 *
 * The rule, made checkable: a README paragraph (a block between blank lines; a fenced code block counts
 * with the paragraph before it, since a transcript's figures are explained there) that holds a timing
 * figure — a number followed by ms, µs, s, s/step, min, minutes, seconds, h or hours — also names a CPU
 * model or family (`EPYC`, `family N`, `Xeon`, `Ryzen`, `Core i…`) and its vector extension (`AVX-512` or
 * `AVX2`).
 */
import { assertEquals } from "./assert.ts";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Timing figures: "0.53 s", "4.6 min", "~5 min", "167 s", "0.77 s/step", "12 ms", "40 minutes", "9–10 min". */
export const TIMING =
  /(?<![\w.])\d+(?:[.,]\d+)?(?:\s?[–-]\s?\d+(?:[.,]\d+)?)?\s?(?:ms|µs|s|s\/step|min|minutes?|seconds?|h|hours?)(?![\w/])/g;
const CPU_MODEL = /\bEPYC\b|\bfamily \d+|\bXeon\b|\bRyzen\b|\bCore i\d/;
const CPU_ISA = /AVX-512|AVX2/;

/** The README's paragraphs, each fenced code block joined to the paragraph before it. */
export const paragraphs = (markdown: string): string[] => {
  const blocks: string[] = [];
  let current: string[] = [];
  let inFence = false;
  const flush = () => {
    if (current.length > 0) blocks.push(current.join("\n"));
    current = [];
  };
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) {
      if (!inFence) {
        // A fence opens: it belongs to the paragraph just ended (or the one still open).
        if (current.length === 0 && blocks.length > 0) current = [blocks.pop()!];
      }
      inFence = !inFence;
      current.push(line);
      continue;
    }
    if (!inFence && line.trim() === "") flush();
    else current.push(line);
  }
  flush();
  return blocks;
};

/** Paragraphs with a timing figure but no CPU named: each as its first 100 characters and its figures. */
export const figuresWithoutCpu = (markdown: string) =>
  paragraphs(markdown)
    .filter((p) => [...p.matchAll(TIMING)].length > 0)
    .filter((p) => !(CPU_MODEL.test(p) && CPU_ISA.test(p)))
    .map((p) => ({ start: p.slice(0, 100), figures: [...p.matchAll(TIMING)].map((m) => m[0]) }));

Deno.test("the figure finder: timing figures, CPU names and paragraphs", () => {
  const found = (text: string) => [...text.matchAll(TIMING)].map((m) => m[0]);
  assertEquals(found("0.53 s per step, 4.6 min, ~5 min, 167 s, 0.77 s/step, 12 ms, 40 minutes, 9–10 min"), [
    "0.53 s",
    "4.6 min",
    "5 min",
    "167 s",
    "0.77 s/step",
    "12 ms",
    "40 minutes",
    "9–10 min",
  ]);
  assertEquals(found("170 GFLOP/s, 2 steps, 32×32 crops, 12 images/s, 0.84 GFLOPs, 2 cores, v1.30"), []);
  const md =
    "# t\n\nA run took 4.6 min.\n\nOn an AMD EPYC (family 26, AVX-512) it took\n\n```\ndone after 3 min\n```\n";
  assertEquals(paragraphs(md).length, 3);
  assertEquals(figuresWithoutCpu(md), [{ start: "A run took 4.6 min.", figures: ["4.6 min"] }]);
});

Deno.test("README: every paragraph with a timing figure names its CPU (model or family, and AVX-512 or AVX2)", () => {
  const readme = Deno.readTextFileSync(join(ROOT, "README.md"));
  assertEquals(figuresWithoutCpu(readme), []);
});
