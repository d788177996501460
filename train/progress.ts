/**
 * Training progress: a live line on a terminal (step, loss, images/s, ETA), plain lines otherwise.
 */

const clock = (seconds: number): string => {
  if (!Number.isFinite(seconds)) return "--:--";
  const s = Math.round(seconds);
  const [h, m] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60)];
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
};

export interface Progress {
  readonly update: (step: number, loss: number, imagesPerSecond: number) => void;
  readonly done: () => void;
}

/** `startStep`: the step training (re)starts from, so the ETA counts only steps done in this process. */
export const progressReporter = (
  total: number,
  startStep: number,
  print: (line: string) => void,
  tty = Deno.stderr.isTerminal(),
): Progress => {
  const started = performance.now();
  let live = false;
  return {
    update: (step, loss, imagesPerSecond) => {
      const elapsed = (performance.now() - started) / 1000;
      const eta = ((total - step) * elapsed) / Math.max(step - startStep, 1);
      const width = 24, filled = Math.round((width * step) / total);
      const bar = `[${"#".repeat(filled)}${".".repeat(width - filled)}]`;
      const text = `step ${step}/${total} ${bar} loss ${loss.toFixed(4)} ${
        imagesPerSecond.toFixed(1)
      } img/s ETA ${clock(eta)}`;
      if (tty) {
        Deno.stderr.writeSync(new TextEncoder().encode(`\r${text}\x1b[K`));
        live = true;
      } else print(text);
    },
    done: () => {
      if (live) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
      live = false;
    },
  };
};
