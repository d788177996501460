/**
 * Room on the main thread's stack for a long command line (a shell's `images/*.jpg` is thousands of
 * paths), raised before any model runs.
 *
 * Why: ONNX Runtime 1.30 (its Linux build, in onnxruntime-node), when it creates its environment at the
 * first session, reads `/proc/self/cmdline` and matches the regular expression `(.*)[ ]*.*[\n]*` against
 * all of it; libstdc++'s regex executor recurses once per character, at roughly 250–300 bytes of stack
 * each (measured with gdb and by bisection: a 28 KB argument passed, 30 KB overflowed the default 8 MB
 * stack, and Deno aborted with "thread 'main' has overflowed its stack"). On Linux the main thread's stack grows on demand up to the soft
 * `RLIMIT_STACK`, which a process may raise up to its hard limit; the kernel leaves gigabytes of address
 * space free below the stack for that. So: 8 MB plus 512 bytes per character of the command line (about
 * twice what was measured), when that is more than the current limit (measured: with it, 28,000 paths, a
 * 1.5 MB command line, ran). Linux's own cap on a command line (a
 * quarter of the stack limit at exec, 2 MB by default) thus needs about 1 GB of (mostly untouched) stack.
 *
 * Needs `--allow-ffi` (for `setrlimit`) and read access to `/proc/self/cmdline`; without them, or off
 * Linux, it does nothing: the commands that run models are given both.
 */

const RLIMIT_STACK = 3;
const BASE = 8 * 1024 * 1024;
const PER_CHARACTER = 512;

/** The stack limit a command line of `length` bytes needs (see the module comment). */
export const stackNeeded = (length: number): number => BASE + PER_CHARACTER * length;

const commandLineLength = (): number => {
  try {
    return Deno.readFileSync("/proc/self/cmdline").length;
  } catch {
    return Deno.args.reduce((n, a) => n + new TextEncoder().encode(a).length + 1, 0) + 4096;
  }
};

/**
 * Raises the soft stack limit to what this process's command line needs (capped at the hard limit);
 * returns the limit in force afterwards, or undefined where it cannot tell (not Linux, no FFI permission).
 */
export const ensureStackForCommandLine = (): number | undefined => {
  if (Deno.build.os !== "linux") return undefined;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return undefined;
  let libc: Deno.DynamicLibrary<{
    getrlimit: { parameters: ["i32", "buffer"]; result: "i32" };
    setrlimit: { parameters: ["i32", "buffer"]; result: "i32" };
  }>;
  try {
    libc = Deno.dlopen("libc.so.6", {
      getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
      setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
    });
  } catch {
    return undefined;
  }
  try {
    // struct rlimit { rlim_t rlim_cur, rlim_max } with a 64-bit rlim_t; RLIM_INFINITY is all ones.
    const limit = new BigUint64Array(2);
    if (libc.symbols.getrlimit(RLIMIT_STACK, new Uint8Array(limit.buffer)) !== 0) return undefined;
    const needed = BigInt(stackNeeded(commandLineLength()));
    if (limit[0] < needed) {
      limit[0] = needed < limit[1] ? needed : limit[1];
      libc.symbols.setrlimit(RLIMIT_STACK, new Uint8Array(limit.buffer));
      libc.symbols.getrlimit(RLIMIT_STACK, new Uint8Array(limit.buffer));
    }
    return Number(limit[0] > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : limit[0]);
  } finally {
    libc.close();
  }
};
