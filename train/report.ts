/**
 * `report.html` for a run folder: reads metrics.jsonl, eval-*.json and examples/*.png, renders one
 * self-contained page and replaces the previous report atomically (a browser refreshing during
 * training never sees half a file).
 */
import { Effect } from "effect";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic_write.ts";
import { type RenderOptions, renderReport } from "./report_html.ts";
import { readRunInputs, type ReadRunOptions, ReportError } from "./report_inputs.ts";

export { renderReport } from "./report_html.ts";
export { readRunInputs, ReportError } from "./report_inputs.ts";

export const REPORT_FILE = "report.html";

/** Writes `<runDir>/report.html` and returns its path. */
export const writeReport = (
  runDir: string,
  options: RenderOptions & ReadRunOptions = {},
): Effect.Effect<string, ReportError> =>
  Effect.gen(function* () {
    const inputs = yield* readRunInputs(runDir, options);
    const file = join(runDir, REPORT_FILE);
    yield* writeFileAtomic(file, renderReport(inputs, options)).pipe(
      Effect.mapError((e) => new ReportError({ file: e.file, message: e.message })),
    );
    return file;
  });
