/**
 * Panoptic training end to end on coco133 (64×64 crops, a few steps): batches carry segment ids through
 * the same rescale/crop/flip as the semantic labels; a run stopped and resumed equals one that never
 * stopped, bitwise; truncation of ground-truth masks is counted in train.log; the final evaluation
 * reports PQ / SQ / RQ and the derived mIoU.
 */
import { Effect, Exit, Stream } from "effect";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assert, assertEquals } from "./assert.ts";
import { train } from "../train/train.ts";
import { trainLoader } from "../data/loader.ts";
import { coco133 } from "../dsl/datasets.ts";
import { trainPipeline } from "../dsl/dataset.ts";
import { tinyPanoptic } from "./fixtures/tiny_panoptic.ts";
import { finalState, metrics, run } from "./run_helpers.ts";

const HAVE_COCO = existsSync("../shared/data/coco133/panoptic");

Deno.test({
  name: "panoptic loader: segment ids follow the labels through rescale, crop and flip (workers or not)",
  ignore: !HAVE_COCO,
  fn: async () => {
    const batches = (workers: number) =>
      Effect.runPromise(Stream.runCollect(
        trainLoader(coco133, trainPipeline({ scale: [128, 128], cropSize: [64, 64] }), {
          batchSize: 2,
          seed: 3,
          workers,
          panoptic: true,
        }).pipe(Stream.take(3)),
      ));
    const [main, pooled] = [await batches(0), await batches(1)];
    for (const [i, b] of main.entries()) {
      assertEquals(Array.from(b.labels), Array.from(pooled[i].labels));
      for (let s = 0; s < b.batchSize; s++) {
        const p = b.panoptic![s];
        assertEquals(Array.from(p.segmentIds), Array.from(pooled[i].panoptic![s].segmentIds));
        // Every labelled pixel of a segment carries that segment's class in the semantic map.
        const category = new Map(p.segments.map((seg) => [seg.id, seg.category]));
        let segmented = 0;
        for (let q = 0; q < 64 * 64; q++) {
          const id = p.segmentIds[q];
          if (id === 0) continue;
          segmented++;
          assertEquals(category.get(id), b.labels[s * 64 * 64 + q], `${b.ids[s]} pixel ${q}`);
        }
        assert(segmented > 0, `${b.ids[s]}: no segment in the crop`);
      }
    }
  },
});

Deno.test({
  name:
    "panoptic train: stop at 3, resume to 6 = never stopping, bitwise; truncation in train.log; PQ at the end",
  ignore: !HAVE_COCO,
  fn: async () => {
    const root = await mkdtemp(join(tmpdir(), "kappa-panoptic-"));
    try {
      const e = tinyPanoptic();
      const straight = join(root, "straight"), resumed = join(root, "resumed");
      const full = await Effect.runPromiseExit(
        train(e, { out: straight, workers: 0, print: () => {}, evalLimit: 3 }),
      );
      assert(Exit.isSuccess(full), String(full));
      const stopped = await run(e, { out: resumed, stopAfter: 3 });
      assert(Exit.isFailure(stopped) && String(stopped.cause).includes("stopped at step 3"), String(stopped));
      assert(Exit.isSuccess(await run(e, { out: resumed, resume: true })));
      const [sa, sb] = [await finalState(straight), await finalState(resumed)];
      assertEquals(Object.keys(sa).sort(), Object.keys(sb).sort());
      for (const name of Object.keys(sa)) {
        const [x, y] = [sa[name].data as Float32Array, sb[name].data as Float32Array];
        assert(x.length === y.length && x.every((v, i) => Object.is(v, y[i])), `${name} differs`);
      }
      const train_ = metrics(straight).filter((m) => m.kind === "train");
      assertEquals(metrics(resumed), train_);
      assertEquals(Object.keys(train_[0].terms).sort(), ["maskId", "pqClass", "pqDice", "semantic"]);
      // 8 queries: coco133 crops with more masks are truncated, and the log says so.
      const log = readFileSync(join(straight, "train.log"), "utf8");
      assert(/panoptic targets: \d+ of 12 images had more than 8 ground-truth masks/.test(log), log);
      // The final evaluation: PQ / SQ / RQ (all, things, stuff) and mIoU, in metrics.jsonl and the run's record
      // (eval-val2017-first3.json: its first 3 images).
      const evalLine = metrics(straight).find((m) => m.kind === "eval");
      assertEquals(Object.keys(evalLine).sort(), [
        "PQ",
        "PQ_st",
        "PQ_th",
        "RQ",
        "SQ",
        "images",
        "kind",
        "mIoU",
        "split",
        "step",
        "units",
      ]);
      assertEquals(evalLine.images, 3);
      const record = JSON.parse(readFileSync(join(straight, "eval-val2017-first3.json"), "utf8"));
      assertEquals(record.pq.perCategory.length, 133);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  },
});
