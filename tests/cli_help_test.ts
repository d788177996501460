/**
 * The help a user reads: every command's --help describes each of its arguments and flags, names the
 * command as it is typed (`npx --yes deno@2.9.6 task …`), and `deno task` lists each task with a line.
 */
import { readFileSync } from "node:fs";
import { cli } from "./cli_runner.ts";
import { assert, assertEquals } from "./assert.ts";

const TASK = "npx --yes deno@2.9.6 task";

/** The lines of one section (`ARGUMENTS`, `FLAGS`, `SUBCOMMANDS`) of a help text. */
const section = (help: string, name: string): string[] => {
  const lines = help.split("\n");
  const start = lines.indexOf(name);
  if (start < 0) return [];
  const end = lines.findIndex((l, i) => i > start && l.trim() === "");
  return lines.slice(start + 1, end < 0 ? undefined : end);
};

/** An entry of ARGUMENTS or FLAGS: `  --name type    description`; a choice list alone describes nothing. */
const entry = (line: string) => {
  // Name and type are one space apart; two or more spaces set off the description.
  const m = /^ {2}(\S+)(?: \S+)?(?: {2,}(.*))?$/.exec(line.trimEnd());
  if (!m) throw new Error(`unexpected help line: ${JSON.stringify(line)}`);
  return { name: m[1], description: (m[2] ?? "").replace(/\(choices: [^)]*\)$/, "").trim() };
};

Deno.test("help: every argument and flag of every command has a description", async () => {
  const root = await cli("--help");
  assertEquals(root.code, 0, root.stderr);
  const commands = section(root.stdout, "SUBCOMMANDS").map((l) => l.trim().split(/\s+/)[0]);
  assertEquals(commands, [
    "quickstart",
    "train",
    "eval",
    "predict",
    "export",
    "classify",
    "web",
    "spec",
    "describe",
    "data",
    "gradcheck",
  ]);
  const undescribed: string[] = [], usage: string[] = [];
  for (const command of commands) {
    const help = await cli(command, "--help");
    assertEquals(help.code, 0, `${command}: ${help.stderr}`);
    // The usage line names the command as it is typed.
    const line = section(help.stdout, "USAGE")[0] ?? "";
    if (!line.startsWith(`  ${TASK} ${command}`)) usage.push(line.trim());
    for (const name of ["ARGUMENTS", "FLAGS"]) {
      for (const line of section(help.stdout, name)) {
        const e = entry(line);
        if (e.description === "") undescribed.push(`${command} ${e.name}`);
      }
    }
  }
  assertEquals(undescribed, []);
  assertEquals(usage, []);
});

Deno.test("help: quickstart takes --threads and --workers like train", async () => {
  const help = await cli("quickstart", "--help");
  const flags = section(help.stdout, "FLAGS").map((l) => entry(l).name);
  for (const f of ["--data", "--steps", "--out", "--threads", "--workers", "--provider"]) {
    assert(flags.includes(f), `${f} in ${flags}`);
  }
});

Deno.test("help: a bad flag's hint names the command as it is typed", async () => {
  const r = await cli("eval", "runs/x", "--bogus");
  assertEquals(r.stderr, `eval: unknown flag --bogus; see ${TASK} eval --help\n`);
});

Deno.test("deno task lists every task with a description", async () => {
  const config = JSON.parse(readFileSync("deno.json", "utf8")) as {
    tasks: Record<string, string | { command: string; description?: string }>;
  };
  const bare = Object.entries(config.tasks).filter(([, t]) =>
    typeof t === "string" || !t.description?.trim()
  );
  assertEquals(bare.map(([name]) => name), []);
  const listed = await new Deno.Command(Deno.execPath(), { args: ["task"], stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(listed.stderr) + new TextDecoder().decode(listed.stdout);
  for (const [name, t] of Object.entries(config.tasks)) {
    const description = (t as { description: string }).description;
    assert(text.includes(name) && text.includes(description.slice(0, 40)), `${name}: ${text}`);
  }
});
