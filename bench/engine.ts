/** Engine benchmarks (not built yet). */
export const main = (_args: string[]): Promise<void> => {
  console.error("bench engine: not built yet");
  Deno.exit(1);
};
