/**
 * Where a LarvSeg model's novel classes lose: per-pixel and per-image statistics of its K-class logits on
 * labelled pixels, split into base and novel classes (the classes `eval.novel` names).
 *
 * Pixel level, for every labelled pixel of true class c: whether c has the highest logit (the pixel is
 * won: the recall that IoU's intersection counts), c's rank among the K logits (1 = highest; ties count
 * against c, as an argmax taking another tied class would), and the margin z_c − max_{j≠c} z_j (negative:
 * by how much c loses). For the pixels a novel class loses, which class wins them.
 *
 * Image level: the mean of each class's logit over the image's pixels — the quantity LarvSeg's image-level
 * loss trains (DESIGN.md: softmax of the pixel-averaged logits) — ranked over the images by multi-label
 * average precision against the classes present in the label map. A novel class with a high image-level AP
 * and no won pixels is recognised but not localised.
 */
import { averagePrecision } from "./multilabel_ap.ts";
import { metricsInputError } from "./metrics_error.ts";

/** Pixel statistics of one class group (or one class). */
export interface PixelStats {
  /** Labelled pixels of the group's classes. */
  readonly pixels: number;
  /** Share of them whose true class has the highest logit, percent. */
  readonly won: number;
  /** The same share per class, averaged over the group's classes that have pixels (mmseg's mAcc), percent. */
  readonly classMeanWon: number;
  /** Mean rank of the true class among the K logits (1 = highest). */
  readonly meanRank: number;
  /** Mean of z_true − max of the other logits. */
  readonly meanMargin: number;
}

export interface NovelClassStats extends PixelStats {
  readonly name: string;
  /** Image-level AP (percent) of the pixel-averaged logit; NaN if no image holds the class. */
  readonly imageAP: number;
  /** The class that wins most of this class's pixels, and the share it wins (percent). */
  readonly winner: { readonly name: string; readonly share: number } | null;
}

export interface NovelDiagnosis {
  readonly images: number;
  readonly base: PixelStats;
  readonly novel: PixelStats;
  /** Mean image-level AP (percent) of the base and of the novel classes present in the split. */
  readonly imageMAP: { readonly base: number; readonly novel: number };
  /**
   * What a random ranking's AP would be on average: the mean share of images holding a class (percent),
   * over the same classes as `imageMAP`.
   */
  readonly imageChance: { readonly base: number; readonly novel: number };
  /** Per novel class, in class-id order. */
  readonly classes: readonly NovelClassStats[];
  /** The classes that win the most novel pixels, with their share of all novel pixels (percent). */
  readonly winners: readonly { readonly name: string; readonly share: number }[];
}

export interface NovelDiagnosisAccumulator {
  /**
   * One image: `logits` [K, height, width] row-major, `labels` [height, width] (the ignore index and ids
   * ≥ K are skipped).
   */
  readonly add: (logits: Float32Array, labels: Int32Array, height: number, width: number) => void;
  readonly summary: () => NovelDiagnosis;
}

const nanMean = (xs: readonly number[]) => {
  const kept = xs.filter((x) => !Number.isNaN(x));
  return kept.length === 0 ? NaN : kept.reduce((a, b) => a + b, 0) / kept.length;
};

export const novelDiagnosisAccumulator = (
  { classNames, novel, ignoreIndex }: {
    readonly classNames: readonly string[];
    readonly novel: Uint8Array;
    readonly ignoreIndex: number;
  },
): NovelDiagnosisAccumulator => {
  const k = classNames.length;
  if (novel.length !== k) {
    throw metricsInputError("novelDiagnosis", "novel", `has ${novel.length} entries, expected ${k}`);
  }
  // Per true class: pixels, won, rank sum, margin sum; per (novel true class, winner): pixels.
  const pixels = new Float64Array(k), won = new Float64Array(k);
  const rankSum = new Float64Array(k), marginSum = new Float64Array(k);
  const winners = new Float64Array(k * k);
  const imageScores: Float64Array[] = [], imageTargets: Uint8Array[] = [];
  const add = (logits: Float32Array, labels: Int32Array, height: number, width: number) => {
    const hw = height * width;
    if (logits.length !== k * hw) {
      throw metricsInputError(
        "novelDiagnosis",
        "logits",
        `has ${logits.length} entries, expected ${k}×${hw}`,
      );
    }
    if (labels.length !== hw) {
      throw metricsInputError("novelDiagnosis", "labels", `has ${labels.length} entries, expected ${hw}`);
    }
    const mean = new Float64Array(k), present = new Uint8Array(k);
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let p = 0; p < hw; p++) s += logits[c * hw + p];
      mean[c] = s / hw;
    }
    for (let p = 0; p < hw; p++) {
      const t = labels[p];
      if (t === ignoreIndex || t < 0 || t >= k) continue;
      present[t] = 1;
      const zt = logits[t * hw + p];
      let rank = 1, best = -Infinity, winner = -1;
      for (let c = 0; c < k; c++) {
        if (c === t) continue;
        const z = logits[c * hw + p];
        if (z >= zt) rank++;
        if (z > best) [best, winner] = [z, c];
      }
      pixels[t]++;
      rankSum[t] += rank;
      marginSum[t] += zt - best;
      if (rank === 1) won[t]++;
      else if (novel[t]) winners[t * k + winner]++;
    }
    imageScores.push(mean);
    imageTargets.push(present);
  };
  const group = (want: (c: number) => boolean): PixelStats => {
    let n = 0, w = 0, r = 0, m = 0;
    const shares: number[] = [];
    for (let c = 0; c < k; c++) {
      if (!want(c) || pixels[c] === 0) continue;
      n += pixels[c], w += won[c], r += rankSum[c], m += marginSum[c];
      shares.push((100 * won[c]) / pixels[c]);
    }
    return n === 0
      ? { pixels: 0, won: NaN, classMeanWon: NaN, meanRank: NaN, meanMargin: NaN }
      : { pixels: n, won: (100 * w) / n, classMeanWon: nanMean(shares), meanRank: r / n, meanMargin: m / n };
  };
  const summary = (): NovelDiagnosis => {
    const ap = Array.from(
      { length: k },
      (_, c) => 100 * averagePrecision(imageScores.map((s) => s[c]), imageTargets.map((t) => t[c])),
    );
    const prevalence = Array.from({ length: k }, (_, c) => {
      const n = imageTargets.reduce((a, t) => a + t[c], 0);
      return n === 0 ? NaN : (100 * n) / imageTargets.length;
    });
    const novelIds = Array.from({ length: k }, (_, c) => c).filter((c) => novel[c] === 1);
    const totalWinners = new Float64Array(k);
    let lostNovel = 0;
    for (const t of novelIds) {
      for (let c = 0; c < k; c++) totalWinners[c] += winners[t * k + c], lostNovel += winners[t * k + c];
    }
    const novelPixels = novelIds.reduce((a, c) => a + pixels[c], 0);
    return {
      images: imageScores.length,
      base: group((c) => novel[c] === 0),
      novel: group((c) => novel[c] === 1),
      imageMAP: {
        base: nanMean(ap.filter((_, c) => novel[c] === 0)),
        novel: nanMean(ap.filter((_, c) => novel[c] === 1)),
      },
      imageChance: {
        base: nanMean(prevalence.filter((_, c) => novel[c] === 0)),
        novel: nanMean(prevalence.filter((_, c) => novel[c] === 1)),
      },
      classes: novelIds.map((c) => {
        let top = -1;
        for (let j = 0; j < k; j++) if (top < 0 || winners[c * k + j] > winners[c * k + top]) top = j;
        const lost = pixels[c] - won[c];
        return {
          name: classNames[c],
          ...group((j) => j === c),
          imageAP: ap[c],
          winner: lost > 0 && top >= 0
            ? { name: classNames[top], share: (100 * winners[c * k + top]) / pixels[c] }
            : null,
        };
      }),
      winners: lostNovel === 0 ? [] : Array.from(totalWinners, (n, c) => ({ c, n }))
        .filter((x) => x.n > 0)
        .sort((a, b) => b.n - a.n || a.c - b.c)
        .slice(0, 3)
        .map((x) => ({ name: classNames[x.c], share: (100 * x.n) / novelPixels })),
    };
  };
  return { add, summary };
};
