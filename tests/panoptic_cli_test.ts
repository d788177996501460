/**
 * A panoptic run through the CLI as a user runs it: train (tiny, coco133), eval (PQ / SQ / RQ and
 * mIoU), predict (COCO panoptic PNG + JSON, picture), export (ONNX that a fresh ONNX Runtime session runs,
 * matching the plan's inference graph), predict --export-size equal to the exported model used by its
 * metadata's rule; evaluation with merging thresholds at 0 scores real segments.
 */
import { Effect } from "effect";
import * as ort from "onnxruntime-node";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { assert, assertClose, assertEquals } from "./assert.ts";
import { cli } from "./cli_runner.ts";
import { experimentJson } from "../dsl/experiment.ts";
import { tinyPanoptic } from "./fixtures/tiny_panoptic.ts";
import { loadRun } from "../train/load_run.ts";
import { requireKind } from "../kinds/registry.ts";
import { panopticKind } from "../kinds/panoptic.ts";
import { openDataset } from "../data/open.ts";
import { evaluatePanoptic } from "../eval/panoptic_eval.ts";
import { inferenceGraph } from "../interpret/panoptic.ts";
import { runGraph } from "./graph_runner.ts";
import { value } from "../ir/value.ts";
import { readRgb, readSegmentIds } from "../data/decode.ts";
import { readJsonFile } from "../data/config_file.ts";
import { PanopticJson } from "../data/coco.ts";
import { resizeLabels, resizeRgb } from "../data/resize.ts";
import { normalizeRgb } from "../data/normalize.ts";
import { fitSize } from "../eval/export_size.ts";
import { mergePanoptic } from "../eval/panoptic_merge.ts";

const HAVE_COCO = existsSync("../shared/data/coco133/panoptic");

Deno.test({
  name: "panoptic CLI: train → eval → predict → export; PQ with real segments at merge thresholds 0",
  ignore: !HAVE_COCO,
  fn: async () => {
    const root = await mkdtemp(join(tmpdir(), "kappa-panoptic-cli-"));
    try {
      const spec = join(root, "tiny.json"), dir = join(root, "run");
      // Every merging threshold at 0: the maps that predict writes hold segments to compare.
      const e = tinyPanoptic({ steps: 4, checkpointEvery: 4 }, {
        merge: { maskThreshold: 0, thingThreshold: 0, stuffThreshold: 0, overlapThreshold: 0, minArea: 0 },
      });
      await writeFile(spec, experimentJson(e));
      const t = await cli("train", spec, "--out", dir, "--workers", "0", "--eval-limit", "2");
      assertEquals(t.code, 0, t.stderr);
      assert(/eval step 4 \(val2017, 2 images\): PQ \d+\.\d\d SQ/.test(t.stdout + t.stderr), t.stderr);

      const ev = await cli("eval", dir, "--limit", "2", "--workers", "0");
      assertEquals(ev.code, 0, ev.stderr);
      assert(/PQ=\d+\.\d\d mIoU=\d+\.\d\d/.test(ev.stdout), ev.stdout);
      // The run's own record and this one are the same evaluation (its last checkpoint is its best, its
      // first 2 images): one file, named for the 2 images.
      const record = JSON.parse(readFileSync(join(dir, "eval-val2017-first2.json"), "utf8"));
      assertEquals([record.images, record.units, record.pq.perCategory.length], [2, "fraction", 133]);

      const image = "../shared/data/coco133/images/val2017/000000000139.jpg";
      const out = join(root, "pred");
      const pr = await cli("predict", dir, image, "--out", out);
      assertEquals(pr.code, 0, pr.stderr);
      for (
        const f of ["000000000139_panoptic.png", "000000000139-panoptic.png", "000000000139-overlay.png"]
      ) {
        assert(existsSync(join(out, f)), f);
      }
      const json = JSON.parse(readFileSync(join(out, "panoptic.json"), "utf8"));
      assertEquals(json.annotations[0].file_name, "000000000139_panoptic.png");
      assertEquals(json.categories.length, 133);
      // A complete COCO panoptic results file, as panopticapi's pq_compute reads it: kappa's own COCO
      // reader decodes it, and the image id is the dataset's integer images[].id (139), not the stem.
      const results = await Effect.runPromise(
        readJsonFile(PanopticJson, join(out, "panoptic.json"), "ignore"),
      );
      assertEquals(results.images, [{ id: 139, file_name: "000000000139.jpg", width: 640, height: 426 }]);
      assertEquals(results.annotations.map((a) => a.image_id), [139]);
      const ids = await Effect.runPromise(readSegmentIds(join(out, "000000000139_panoptic.png")));
      const areas = new Map<number, number>();
      for (const id of ids.data) if (id !== 0) areas.set(id, (areas.get(id) ?? 0) + 1);
      assertEquals(
        results.annotations[0].segments_info.map((s) => [s.id, s.area]).sort((a, b) => a[0] - b[0]),
        [...areas].sort((a, b) => a[0] - b[0]),
      );

      const pe0 = await Effect.runPromise(requireKind(e, panopticKind, "test"));
      const classes0 = (await Effect.runPromise(openDataset(pe0.data.dataset, "val2017"))).classes;
      const onnx = join(root, "model.onnx");
      const ex = await cli("export", dir, onnx);
      assertEquals(ex.code, 0, ex.stderr);
      assert(ex.stdout.includes("kappa.postprocess = mask-wise merging"), ex.stdout);
      const session = await ort.InferenceSession.create(onnx);
      assertEquals([...session.outputNames], ["classProbabilities", "maskProbabilities"]);
      const run = await Effect.runPromise(loadRun(dir));
      const x = Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => Math.sin(i));
      const got = await session.run({ images: new ort.Tensor("float32", x, [1, 3, 64, 64]) });
      const want = await runGraph(
        inferenceGraph(
          (await Effect.runPromise(requireKind(run.experiment, panopticKind, "test"))).model,
          { batch: 1, height: 64, width: 64, trainSize: [64, 64] },
        ),
        { images: value("float32", x, [1, 3, 64, 64]) },
        { state: Object.fromEntries(run.state) },
      );
      for (const name of ["classProbabilities", "maskProbabilities"]) {
        assertClose(got[name].data as Float32Array, want[name], { atol: 1e-5, message: name });
      }

      // predict --export-size = the exported model used by its metadata's rule: fit 640×426 inside 64×64
      // (64×43), pad to 64×64, merge on the 43×64 region, segment ids back to 426×640 by nearest neighbour.
      const outExport = join(root, "pred-export");
      const pe2 = await cli("predict", dir, image, "--out", outExport, "--export-size");
      assertEquals(pe2.code, 0, pe2.stderr);
      const written = await Effect.runPromise(readRgb(join(outExport, "000000000139_panoptic.png")));
      assertEquals([written.height, written.width], [426, 640]);
      const writtenIds = Int32Array.from(
        { length: 426 * 640 },
        (_, i) => written.data[3 * i] + 256 * written.data[3 * i + 1] + 65536 * written.data[3 * i + 2],
      );
      const img = await Effect.runPromise(readRgb(image));
      const [h, w] = fitSize(img.height, img.width, [64, 64]);
      assertEquals([h, w], [43, 64]);
      const resized = await Effect.runPromise(resizeRgb(img.data, img.height, img.width, h, w));
      const input = normalizeRgb(resized, h, w, pe0.data.test.mean, pe0.data.test.std, 64, 64, 0);
      const onnxOut = await session.run({ images: new ort.Tensor("float32", input, [1, 3, 64, 64]) });
      const probs = onnxOut.maskProbabilities.data as Float32Array; // [1, N, 64, 64]
      const n = pe0.model.numMaskSlots;
      const region = new Float32Array(n * h * w);
      for (let q = 0; q < n; q++) {
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) region[(q * h + y) * w + x] = Math.log(probs[(q * 64 + y) * 64 + x]);
        }
      }
      const merged = mergePanoptic(
        Float32Array.from(onnxOut.classProbabilities.data as Float32Array, Math.log),
        region,
        { queries: n, classes: 133, pixels: h * w },
        classes0.isThing!,
        pe0.model.merge,
      );
      assert(merged.segments.length > 0, "thresholds 0: the exported model's merge keeps segments");
      assertEquals(Array.from(writtenIds), Array.from(resizeLabels(merged.ids, h, w, 426, 640)));
      // The ids alone say little at thresholds 0 (one segment takes the image); the kept query's class
      // confidence depends on the padding (queries attend to every pixel), so it checks the 64×64 input.
      const info =
        JSON.parse(readFileSync(join(outExport, "panoptic.json"), "utf8")).annotations[0].segments_info;
      assertEquals(info.length, merged.segments.length);
      assertClose([info[0].score], [merged.segments[0].score], { atol: 1e-5, message: "score" });

      // With every threshold at 0 the best query claims every pixel: merging yields a segment and PQ counts them.
      const pe = await Effect.runPromise(requireKind(run.experiment, panopticKind, "test"));
      const classes = (await Effect.runPromise(openDataset(pe.data.dataset, "val2017"))).classes;
      const r = await Effect.runPromise(evaluatePanoptic(pe, run.state, classes, {
        limit: 2,
        workers: 0,
        merge: { maskThreshold: 0, thingThreshold: 0, stuffThreshold: 0, overlapThreshold: 0 },
      }));
      const counted = r.pq.perCategory.reduce((s, c) => s + c.tp + c.fp, 0);
      assert(counted > 0, "no predicted segment was scored");
      assert(r.segmentation.mIoU >= 0 && r.pq.all.n > 0);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  },
});
