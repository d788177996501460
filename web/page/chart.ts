/// <reference lib="dom" />
/**
 * The live loss chart: the total loss per step as a line on a canvas, with the step range and the loss
 * range written on the axes.
 */

export const drawLossChart = (
  canvas: HTMLCanvasElement,
  steps: readonly number[],
  losses: readonly number[],
) => {
  const ctx = canvas.getContext("2d")!;
  const { width, height } = canvas;
  const [left, right, top, bottom] = [56, 12, 12, 28];
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height);
  ctx.strokeStyle = "#999";
  ctx.strokeRect(left, top, width - left - right, height - top - bottom);
  ctx.fillStyle = "#333";
  ctx.font = "12px sans-serif";
  if (losses.length === 0) {
    ctx.fillText("loss per step: press Train", left + 10, top + 20);
    return;
  }
  const finite = losses.filter(Number.isFinite);
  let lo = Math.min(...finite), hi = Math.max(...finite);
  if (hi - lo < 1e-9) [lo, hi] = [lo - 0.5, hi + 0.5];
  const [s0, s1] = [steps[0], Math.max(steps[steps.length - 1], steps[0] + 1)];
  const x = (s: number) => left + ((s - s0) / (s1 - s0)) * (width - left - right);
  const y = (v: number) => top + (1 - (v - lo) / (hi - lo)) * (height - top - bottom);
  ctx.fillText(hi.toFixed(3), 4, top + 10);
  ctx.fillText(lo.toFixed(3), 4, height - bottom);
  ctx.fillText(`step ${s0}`, left, height - 8);
  const end = `step ${steps[steps.length - 1]}`;
  ctx.fillText(end, width - right - ctx.measureText(end).width, height - 8);
  ctx.strokeStyle = "#c0392b";
  ctx.lineWidth = 2;
  ctx.beginPath();
  losses.forEach((v, i) => (i === 0 ? ctx.moveTo(x(steps[i]), y(v)) : ctx.lineTo(x(steps[i]), y(v))));
  ctx.stroke();
  ctx.fillStyle = "#c0392b";
  losses.forEach((v, i) => ctx.fillRect(x(steps[i]) - 2, y(v) - 2, 4, 4));
};
