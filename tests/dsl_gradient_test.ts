/**
 * A spot gradient check of a whole segmenter (ViT-Tiny width: d = 192, 3 heads; depth reduced to 1):
 * for one entry of several parameters across backbone, ξ, ψ and τ, autodiff's gradient matches
 * central differences of the full training loss (float32, step 1e-2 on the parameter).
 */
import { Effect } from "effect";
import { assert } from "./assert.ts";
import * as m from "../dsl/model.ts";
import { lossGraph } from "../interpret/graphs.ts";
import { grad } from "../ir/autodiff.ts";
import { execute } from "../runtime/execute.ts";
import { graphStage, plan } from "../ir/plan.ts";
import { value } from "../ir/value.ts";
import { random } from "../core/random.ts";

const PARAMS = [
  "model.backbone.patchEmbed.weight",
  "model.backbone.blocks.0.attn.qkv.weight",
  "model.backbone.blocks.0.mlp.fc2.bias",
  "model.proj.weight",
  "model.xi.classEmbed",
  "model.xi.fc.weight",
  "model.psi.blocks.0.attn.proj.weight",
  "model.psi.projPatch",
  "model.temperature.logTau",
];

Deno.test("whole segmenter: autodiff gradients match finite differences on sampled parameters", async () => {
  const K = 9, B = 2, S = 32;
  const spec = m.segmenter({
    classes: K,
    backbone: m.vitTiny({ depth: 1 }),
    xi: m.transformerEncoder({ pool: 2, heads: 3 }),
    psi: m.maskTransformer({ layers: 1, heads: 3 }),
    select: m.topK(4),
    temperature: m.rankAdaptive(),
  });
  const { graph: g, loss } = lossGraph(spec, { batch: B, height: S, width: S, trainSize: [S, S] });
  const params = PARAMS.map((name) => g.lookup(name)!);
  grad(loss, params).forEach((gr, i) => g.output(`grad:${PARAMS[i]}`, gr));
  const rng = random(2);
  const feeds = {
    images: value("float32", Float32Array.from({ length: B * 3 * S * S }, () => rng.normal()), [B, 3, S, S]),
    labels: value(
      "int32",
      Int32Array.from({ length: B * S * S }, (_, i) => (i % S < 3 ? 255 : Math.floor(i / 97) % K)),
      [B, S, S],
    ),
  };
  await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const ex = yield* execute(plan("g", g, [graphStage(g)]), { seed: 4 });
    const base = yield* ex.run(feeds);
    for (const name of PARAMS) {
      const grads = base.get(`grad:${name}`)!.data as Float32Array;
      // The entry with the largest gradient, so float32 differences resolve it well.
      let j = 0;
      for (let i = 1; i < grads.length; i++) if (Math.abs(grads[i]) > Math.abs(grads[j])) j = i;
      const param = ex.state.get(name)!;
      const original = (param.data as Float32Array)[j];
      const lossAt = (v: number) =>
        Effect.gen(function* () {
          const data = Float32Array.from(param.data as Float32Array);
          data[j] = v;
          ex.state.set(name, value("float32", data, param.dims));
          return (yield* ex.run(feeds)).get("loss")!.data[0] as number;
        });
      const h = 1e-2;
      const numeric = ((yield* lossAt(original + h)) - (yield* lossAt(original - h))) / (2 * h);
      ex.state.set(name, param);
      const err = Math.abs(grads[j] - numeric) / Math.max(Math.abs(numeric), 1e-3);
      assert(
        err < 0.02,
        `${name}[${j}]: autodiff ${grads[j]} vs finite differences ${numeric} (rel err ${err})`,
      );
    }
  })));
});
