/**
 * The commands that only read specs and data — `spec`, `describe`, `data` — as an entry point of their
 * own: it loads no ONNX Runtime, so the deno tasks run it without write, network, subprocess or (for
 * `spec` and `describe`) native-code permissions (deno.json; the README's "Experiments are programs").
 */
import { runCommands } from "./run.ts";
import { describeCommand, specCommand } from "./spec.ts";
import { dataCliCommand } from "./data.ts";

await runCommands([specCommand, describeCommand, dataCliCommand]);
