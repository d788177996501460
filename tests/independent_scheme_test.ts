/**
 * The independent single-task scheme end to end: a multi-label model trained alone, then a segmenter
 * that ranks with it — frozen (its parameters come out of training bitwise unchanged).
 */
import { Effect, Exit } from "effect";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assert, assertEquals } from "./assert.ts";
import * as m from "../dsl/model.ts";
import { tinyExperiment } from "./fixtures/tiny_experiment.ts";
import { train } from "../train/train.ts";
import { loadRun } from "../train/load_run.ts";
import { rankerName } from "../kinds/ranker.ts";
import { decodeExperiment } from "../dsl/experiment.ts";

Deno.test("independent scheme: the frozen ranker supplies the top-κ ranking and is never updated", async () => {
  const root = await mkdtemp(join(tmpdir(), "kappa-independent-"));
  try {
    const base = tinyExperiment({ steps: 4 });
    const rankerDir = join(root, "ranker");
    const ranker = await Effect.runPromise(decodeExperiment({
      ...base,
      name: "tiny-ranker",
      model: m.segmenter({
        classes: 8,
        backbone: base.model.backbone,
        xi: m.gapLinear(),
        psi: null,
        select: m.all(),
        multiLabelLoss: m.asymmetricLoss(),
      }),
    }, "ranker"));
    const quiet = { workers: 0, print: () => {} };
    const r1 = await Effect.runPromiseExit(train(ranker, { ...quiet, out: rankerDir }));
    assert(Exit.isSuccess(r1), String(r1));
    // A multi-label-only run evaluates mAP only.
    const rankerEval = JSON.parse(readFileSync(join(rankerDir, "eval-val.json"), "utf8"));
    assert(rankerEval.mIoU === null && typeof rankerEval.mAP === "number", JSON.stringify(rankerEval));

    const segmenter = await Effect.runPromise(decodeExperiment({
      ...base,
      name: "tiny-independent",
      model: m.segmenter({
        classes: 8,
        backbone: base.model.backbone,
        xi: null,
        multiLabelLoss: null,
        psi: m.maskTransformer({ layers: 1 }),
        select: m.topK(4),
        scheme: m.independent(rankerDir),
      }),
    }, "segmenter"));
    const segDir = join(root, "segmenter");
    const r2 = await Effect.runPromiseExit(train(segmenter, { ...quiet, out: segDir }));
    assert(Exit.isSuccess(r2), String(r2));
    const seg = JSON.parse(readFileSync(join(segDir, "eval-val.json"), "utf8"));
    assert(typeof seg.mIoU === "number" && typeof seg.mAP === "number", JSON.stringify(seg));

    const before = await Effect.runPromise(loadRun(rankerDir));
    const after = await Effect.runPromise(loadRun(segDir));
    let frozen = 0;
    for (const [name, v] of before.state) {
      if (!name.startsWith("model.")) continue;
      const copy = after.state.get(rankerName(name));
      if (!copy) continue; // not needed for the scores (ξ's class embeddings)
      assertEquals(Array.from(copy.data as Float32Array), Array.from(v.data as Float32Array), name);
      frozen++;
    }
    for (const needed of ["ranker.xi.fc.weight", "ranker.proj.weight", "ranker.backbone.patchEmbed.weight"]) {
      assert(after.state.has(needed), `${needed} missing from the segmenter's checkpoint`);
    }
    assert(frozen > 5, `only ${frozen} ranker tensors`);
    // The ranker has no optimizer moments in the segmenter's run: it was never a parameter there.
    assert(![...after.state.keys()].some((k) => k.includes(":ranker.")));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
