/**
 * Typed errors as the lines the CLI prints: one per violation or bad file, each naming the file, field
 * or layer path at fault.
 */
import { SpecError } from "../dsl/validate.ts";

export const errorLines = (e: unknown): string[] => {
  if (e instanceof SpecError) {
    return e.violations.map((v) => `${e.source}: ${v.path ? `${v.path}: ` : ""}${v.message}`);
  }
  const problems = (e as { problems?: readonly { file: string; message: string }[] }).problems;
  if (Array.isArray(problems) && problems.length) return problems.map((p) => `${p.file}: ${p.message}`);
  const message = e instanceof Error ? e.message : String(e);
  const file = (e as { file?: string }).file;
  const line = message.split("\n")[0] || String((e as { _tag?: string })._tag ?? e);
  return [file && !line.includes(file) ? `${file}: ${line}` : line];
};
