/** LarvSeg's evaluation: mIoU over all, base and novel classes, in the eval JSON, the table and metrics.jsonl. */
import { Effect, Exit } from "effect";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { assert, assertClose, assertEquals } from "./assert.ts";
import { tempDir } from "./data_fixtures.ts";
import { baseNovelMIoU, novelMask } from "../eval/base_novel.ts";
import { addIntersectAndUnion, emptyAreaCounts, summarizeAreas } from "../eval/segmentation_metrics.ts";
import { makeEvalRecord } from "../eval/eval_record.ts";
import { formatMetricsTable } from "../eval/metrics_table.ts";
import { procedural, testPipeline, trainPipeline } from "../dsl/dataset.ts";
import { experiment } from "../dsl/experiment.ts";
import * as m from "../dsl/model.ts";
import { adamWSpec, evalConfig, trainConfig } from "../dsl/training.ts";
import { proceduralNames } from "../data/procedural.ts";
import { train } from "../train/train.ts";

const NAMES = ["bg", "cat", "dog", "cow", "owl"];

/**
 * labels [0,0,1,1,2,2,3,3], predictions [0,1,1,1,2,0,3,3] (owl absent from both):
 * intersect 1,2,1,2; prediction areas 2,3,1,2; label areas 2,2,2,2; unions 3,3,2,2;
 * IoU 1/3, 2/3, 1/2, 1, NaN. Novel = dog, cow, owl: base mIoU (1/3 + 2/3)/2 = 0.5,
 * novel (1/2 + 1)/2 = 0.75 (owl's NaN skipped), all 2.5/4 = 0.625, aAcc 6/8 = 0.75.
 */
const summary = () => {
  const counts = emptyAreaCounts(5);
  addIntersectAndUnion(
    counts,
    Int32Array.of(0, 1, 1, 1, 2, 0, 3, 3),
    Int32Array.of(0, 0, 1, 1, 2, 2, 3, 3),
    255,
  );
  return summarizeAreas(counts);
};

Deno.test("base/novel mIoU: a hand-computed confusion case", async () => {
  const s = summary();
  const novel = (await Effect.runPromise(novelMask(NAMES, ["dog", "cow", "owl"], "toy")))!;
  assertEquals(Array.from(novel), [0, 0, 1, 1, 1]);
  const bn = baseNovelMIoU(s.iou, novel);
  assertClose(bn.base, 0.5, { atol: 1e-12 });
  assertClose(bn.novel, 0.75, { atol: 1e-12 });
  assertClose(s.mIoU, 0.625, { atol: 1e-12 });
  assertClose(s.aAcc, 0.75, { atol: 1e-12 });
  const r = makeEvalRecord({
    split: "val",
    images: 1,
    step: 1,
    checkpoint: "c",
    mode: "whole",
    classNames: NAMES,
    segmentation: s,
    novel,
  });
  assertClose(r.mIoUBase!, 50, { atol: 1e-9 });
  assertClose(r.mIoUNovel!, 75, { atol: 1e-9 });
  assertClose(r.mIoU!, 62.5, { atol: 1e-9 });
  assertEquals(r.classes.map((c) => c.novel), [false, false, true, true, true]);
  const table = formatMetricsTable({ classNames: NAMES, segmentation: s, novel }).split("\n");
  assert(table.some((l) => l.startsWith("dog *")), table.join("\n"));
  assert(table.some((l) => l.startsWith("cat ") && !l.includes("*")));
  assertEquals(table.at(-2), "mIoU base=50.00 novel=75.00 (* = novel class)");
  assertEquals(table.at(-1), "mIoU=62.50 mAP=n/a");
  // Without novel classes nothing changes.
  assertEquals(
    makeEvalRecord({
      ...{ split: "v", images: 1, step: 1, checkpoint: "c", mode: "whole" },
      classNames: NAMES,
      segmentation: s,
    }).mIoUBase,
    undefined,
  );
});

Deno.test("base/novel mIoU: an unknown novel class names eval.novel", async () => {
  const e = await Effect.runPromise(Effect.flip(novelMask(NAMES, ["dog", "yak"], "toy")));
  assertEquals(e.message, `eval.novel: "yak" not in the classes of toy`);
});

Deno.test("a LarvSeg run with eval.novel: eval JSON, metrics.jsonl and the report split base/novel", async () => {
  const root = await tempDir("kappa-novel-");
  try {
    const names = proceduralNames(4);
    const e = experiment({
      name: "tiny-novel",
      model: m.larvSegmenter({
        classes: 4,
        backbone: m.vit({ dim: 16, depth: 1, heads: 2, patchSize: 8 }),
        attentiveClassifier: undefined,
      }),
      data: {
        dataset: procedural({
          numClasses: 4,
          height: 16,
          width: 16,
          count: 4,
          seed: 3,
          hidden: [names[3]],
          imageLabels: "image",
        }),
        train: trainPipeline({ scale: [16, 16], cropSize: [16, 16] }),
        test: testPipeline(),
      },
      train: trainConfig({ steps: 2, batchSize: 2, optimizer: adamWSpec(), logEvery: 1 }),
      eval: evalConfig({ examples: 0, novel: [names[3]] }),
    });
    const out = join(root, "run");
    const exit = await Effect.runPromiseExit(train(e, { out, workers: 0, print: () => {} }));
    assert(Exit.isSuccess(exit), String(exit));
    const record = JSON.parse(await Deno.readTextFile(join(out, "eval-val.json")));
    assert("mIoUBase" in record && "mIoUNovel" in record, Object.keys(record).join());
    assertEquals(record.classes.map((c: { novel: boolean }) => c.novel), [false, false, false, true]);
    const evalLine = (await Deno.readTextFile(join(out, "metrics.jsonl"))).trim().split("\n").map((l) =>
      JSON.parse(l)
    ).find((l) => l.kind === "eval");
    assert("mIoUBase" in evalLine && "mIoUNovel" in evalLine, JSON.stringify(evalLine));
    assert((await Deno.readTextFile(join(out, "report.html"))).includes(`title="novel class"`));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
