/**
 * Child process for the crash test in checkpoint_store_test.ts: starts an atomic write of the file
 * named in argv, writes part of it, says "writing" on stdout, then waits to be killed.
 */
import { Effect } from "effect";
import { writeFileAtomicWith } from "../io/atomic_write.ts";

const file = Deno.args[0];
await Effect.runPromise(
  writeFileAtomicWith(file, async (handle) => {
    await handle.write(new TextEncoder().encode("partial new contents"));
    await handle.sync();
    console.log("writing");
    await new Promise(() => {}); // never finishes: the parent kills us here
  }),
);
