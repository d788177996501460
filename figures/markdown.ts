/**
 * What every bench renders with: tables (columns of header, alignment and cell formatter), the cell
 * formatters, and the writer of a suite's `## section` in BENCHMARKS.md or RESULTS.md.
 */
import type { Summary } from "./stats.ts";

/**
 * One column of a table: its header, how its cells align, and how a row becomes its cell. By default
 * the first column (what the row is) is left-aligned and the others (figures) right-aligned.
 */
export interface Column<R> {
  readonly header: string;
  readonly align?: "left" | "right";
  readonly cell: (row: R) => string;
}

/**
 * How a table is laid out. "padded": every column padded to its widest cell, so the Markdown also reads
 * in a terminal (BENCHMARKS.md's suites). "plain": cells unpadded, rule `---` / `---:` (RESULTS.md).
 * "bare": cells unpadded, rule `|---|---|` without alignment (the data suite's section).
 */
export type TableStyle = "padded" | "plain" | "bare";

/** A GitHub-flavoured Markdown table of `rows`, one cell per column. */
export const table = <R>(
  columns: readonly Column<R>[],
  rows: readonly R[],
  style: TableStyle = "padded",
): string => {
  const cells = rows.map((r) => columns.map((c) => c.cell(r)));
  const right = columns.map((c, i) => (c.align ?? (i === 0 ? "left" : "right")) === "right");
  const widths = columns.map((c, i) =>
    style === "padded" ? Math.max(3, c.header.length, ...cells.map((r) => r[i].length)) : 3
  );
  const pad = (text: string, i: number) =>
    style !== "padded" ? text : right[i] ? text.padStart(widths[i]) : text.padEnd(widths[i]);
  const line = (texts: readonly string[]) => `| ${texts.map(pad).join(" | ")} |`;
  const rule = widths.map((w, i) =>
    !right[i] || style === "bare" ? "-".repeat(w) : `${"-".repeat(style === "padded" ? w - 1 : 3)}:`
  );
  return [
    line(columns.map((c) => c.header)),
    style === "bare" ? `|${rule.join("|")}|` : `| ${rule.join(" | ")} |`,
    ...cells.map(line),
  ].join("\n");
};

/**
 * Replaces the section `<#…#> <title>` of heading `level` in `doc` (up to the next heading of that level or
 * a higher one, or the end) with `body`, or appends the section when it is absent, so each suite rewrites
 * only its own section and keeps the rest byte for byte. BENCHMARKS.md has level-2 sections under one
 * title; RESULTS.md has one level-1 part per experiment grid (each with its own level-2 sections). A section
 * not there yet is added after the last section whose title starts with `near` (a suite that keeps one
 * section per CPU kind puts a new kind beside the others), else at the end.
 */
export const replaceSection = (
  doc: string,
  title: string,
  body: string,
  level = 2,
  near?: string,
): string => {
  const mark = "#".repeat(level);
  const section = `${mark} ${title}\n\n${body.trim()}\n`;
  const lines = doc.split("\n");
  const start = lines.findIndex((l) => l.trimEnd() === `${mark} ${title}`);
  const ends = new RegExp(`^#{1,${level}} `);
  if (start < 0) {
    // A new section goes after the last one whose title starts with `near` (its siblings), else at the end.
    const sibling = near === undefined ? -1 : lines.findLastIndex((l) => l.startsWith(`${mark} ${near}`));
    if (sibling >= 0) {
      let end = lines.findIndex((l, i) => i > sibling && ends.test(l));
      if (end < 0) end = lines.length;
      const before = lines.slice(0, end).join("\n").trimEnd();
      const after = lines.slice(end).join("\n").trim();
      return [before, section.trimEnd(), after].filter((s) => s).join("\n\n") + "\n";
    }
    const head = doc.trimEnd();
    return head ? `${head}\n\n${section}` : level === 2 ? `# Benchmarks\n\n${section}` : section;
  }
  let end = lines.findIndex((l, i) => i > start && ends.test(l));
  if (end < 0) end = lines.length;
  const before = lines.slice(0, start).join("\n").trimEnd();
  const after = lines.slice(end).join("\n").trim();
  return [before, section.trimEnd(), after].filter((s) => s).join("\n\n") + "\n";
};

/**
 * Replaces the level-3 section `### <title>` inside the level-2 section `## <parent>` of `doc` with `body`;
 * when absent it is added at the end of the parent (which is appended when absent too). One suite that writes
 * one subsection per machine (bench quantize: one per CPU kind) keeps the others byte for byte.
 */
export const replaceSubsection = (doc: string, parent: string, title: string, body: string): string => {
  const lines = doc.trimEnd().split("\n");
  if (!lines.some((l) => l.trimEnd() === `### ${title}`)) {
    let start = lines.findIndex((l) => l.trimEnd() === `## ${parent}`);
    if (start < 0) {
      lines.push("", `## ${parent}`);
      start = lines.length - 1;
    }
    let end = lines.findIndex((l, i) => i > start && /^#{1,2} /.test(l));
    if (end < 0) end = lines.length;
    lines.splice(end, 0, ...(end < lines.length ? [`### ${title}`, ""] : ["", `### ${title}`]));
  }
  return replaceSection(lines.join("\n") + "\n", title, body, 3);
};

/**
 * Rewrites the section `title` of a Markdown file (creating the file or appending the section) at
 * heading `level` (2 by default), then formats the file: `deno fmt` wraps Markdown prose, so formatting
 * now keeps `deno fmt --check` clean after a bench run.
 */
export const recordSection = async (
  file: string,
  title: string,
  body: string,
  level = 2,
  near?: string,
): Promise<void> => {
  let doc = "";
  try {
    doc = await Deno.readTextFile(file);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  await Deno.writeTextFile(file, replaceSection(doc, title, body, level, near));
  await formatGenerated(file);
};

/** `deno fmt` on a generated file (Markdown, SVG), so it passes `deno fmt --check` as written. */
export const formatGenerated = async (file: string): Promise<void> => {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--quiet", file],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`deno fmt ${file}: ${new TextDecoder().decode(stderr).trim()}`);
};

/** A number with `digits` decimals, or "–" when it is not finite (a figure that could not be measured). */
export const fixed = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : "–");

/** Milliseconds: two decimals below 10, one above. */
export const formatMs = (x: number): string => fixed(x, x < 10 ? 2 : 1);

/** "median (p10–p90)" in milliseconds. */
export const formatSpread = (s: Summary): string =>
  `${formatMs(s.median)} (${formatMs(s.p10)}–${formatMs(s.p90)})`;

/** A loss value with seven significant digits. */
export const formatLoss = (x: number | undefined): string => (x === undefined ? "–" : x.toPrecision(7));

/** A relative difference, e.g. "2.4e-7". */
export const formatRelative = (x: number): string => (Number.isFinite(x) ? x.toExponential(1) : "–");

/** A share as a whole percentage, e.g. "17 %". */
export const formatPercent = (x: number): string => (Number.isFinite(x) ? `${fixed(100 * x, 0)} %` : "–");
