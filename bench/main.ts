/** kappa's command line: one entry point, one subcommand per deno task. */
const [command] = Deno.args;
console.error(`kappa ${command ?? ""}: not built yet`);
Deno.exit(1);
