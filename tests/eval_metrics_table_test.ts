import { Effect } from "effect";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertClose, assertEquals, assertThrowsMessage } from "./assert.ts";
import { formatMetricsTable } from "../eval/metrics_table.ts";
import { evalFileName, makeEvalRecord, readEvalRecord, writeEvalRecord } from "../eval/eval_record.ts";
import { intersectAndUnion, summarizeAreas } from "../eval/segmentation_metrics.ts";

// K = 3: label [0 0 1 1], pred [0 1 1 1] -> IoU [1/2, 2/3, NaN], Acc [1/2, 1, NaN],
// mIoU 7/12 = 58.33 %, mAcc 75 %, aAcc 3/4.
const summary = summarizeAreas(
  intersectAndUnion(Int32Array.from([0, 1, 1, 1]), Int32Array.from([0, 0, 1, 1]), 3, 255),
);

Deno.test("formatMetricsTable prints percentages, nan for absent classes, and the mIoU/mAP line last", () => {
  const text = formatMetricsTable({
    classNames: ["sky", "building", "pole"],
    segmentation: summary,
    mAP: 55.2,
  });
  assertEquals(
    text,
    [
      "Class         IoU      Acc",
      "--------------------------",
      "sky         50.00    50.00",
      "building    66.67   100.00",
      "pole          nan      nan",
      "--------------------------",
      "aAcc=75.00 mAcc=75.00",
      "mIoU=58.33 mAP=55.20",
    ].join("\n"),
  );
  const noMap = formatMetricsTable({ classNames: ["sky"], segmentation: summary });
  assertEquals(noMap.split("\n").at(-1), "mIoU=58.33 mAP=n/a");
  // Missing names fall back to class_<c>.
  assertEquals(noMap.includes("class_2"), true);
});

Deno.test("eval record: percent everywhere with split and image count, NaN becomes null, round-trips", async () => {
  const record = makeEvalRecord({
    split: "val",
    images: 12,
    step: 100,
    checkpoint: "checkpoints/step-000100.safetensors",
    mode: "whole",
    classNames: ["sky", "building", "pole"],
    segmentation: summary,
    mAP: NaN,
  });
  assertEquals(record.classes[2], { name: "pole", iou: null, acc: null });
  assertEquals([record.split, record.images, record.units], ["val", 12, "percent"]);
  assertClose(record.mIoU!, 100 * 7 / 12);
  assertClose(record.aAcc!, 75);
  assertClose(record.classes[1].iou!, 100 * 2 / 3);
  assertEquals(record.mAP, null);
  const dir = await mkdtemp(join(tmpdir(), "kappa-eval-"));
  try {
    const file = await Effect.runPromise(writeEvalRecord(dir, record));
    assertEquals(file, join(dir, "eval-val.json"));
    assertEquals(JSON.parse(await readFile(file, "utf8")).classes[1].iou, 100 * (2 / 3));
    assertEquals(await Effect.runPromise(readEvalRecord(file)), record);
    // A record from before units were recorded held fractions (mAP ×100): reading converts it.
    const { units: _u, images: _i, ...legacy } = {
      ...record,
      mIoU: 7 / 12,
      mAcc: 0.75,
      aAcc: 0.75,
      mAP: 55.2,
      classes: record.classes.map((c) => ({ ...c, iou: c.iou === null ? null : c.iou / 100, acc: null })),
    };
    await writeFile(file, JSON.stringify(legacy));
    const read = await Effect.runPromise(readEvalRecord(file));
    assertClose(read.mIoU!, 100 * 7 / 12);
    assertEquals([read.aAcc, read.mAP, read.units], [75, 55.2, "percent"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("eval record read errors name the file and the field", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-eval-"));
  try {
    const bad = join(dir, "eval-val.json");
    await writeFile(bad, JSON.stringify({ split: "val", step: 1, checkpoint: "c", mIoU: "high" }));
    const schemaError = await Effect.runPromise(Effect.flip(readEvalRecord(bad)));
    assertEquals(schemaError.message.startsWith(`${bad}: `), true);
    assertEquals(schemaError.message.includes(`["mIoU"]`), true, schemaError.message);
    await writeFile(bad, "{ truncated");
    const jsonError = await Effect.runPromise(Effect.flip(readEvalRecord(bad)));
    assertEquals(jsonError.message.startsWith(`${bad}: not JSON`), true, jsonError.message);
    const missing = await Effect.runPromise(Effect.flip(readEvalRecord(join(dir, "eval-test.json"))));
    assertEquals(missing.message.startsWith(`${join(dir, "eval-test.json")}: cannot read`), true);
    const record = makeEvalRecord({
      split: "val",
      images: 1,
      step: 1,
      checkpoint: "c",
      mode: "whole",
      classNames: [],
      segmentation: summary,
    });
    const noDir = join(dir, "missing");
    const writeError = await Effect.runPromise(Effect.flip(writeEvalRecord(noDir, record)));
    assertEquals(writeError.message.startsWith(`${join(noDir, "eval-val.json")}: creating temp file`), true);
    assertThrowsMessage(() => evalFileName("../val"), `split name "../val" is not a safe file name`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
