import { Effect, Exit } from "effect";
import { assert, assertEquals } from "./assert.ts";
import { LOOP_STATE_KEY, noiseFeed, restoreState } from "../train/run_state.ts";
import { type Value, value } from "../ir/value.ts";

const state = () => new Map<string, Value>([["model.w", value("float32", new Float32Array(6), [2, 3])]]);
const loop = {
  position: { epoch: 1, index: 8 },
  interval: { losses: { loss: 1.5 }, images: 4 },
  elapsedSeconds: 3,
};

Deno.test("run state: restore checks names and shapes, and decodes the loop state", async () => {
  const good = {
    file: "ck.safetensors",
    step: 7,
    tensors: { "model.w": { dtype: "F32" as const, shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, 6) } },
    metadata: { [LOOP_STATE_KEY]: JSON.stringify(loop) },
  };
  const s = state();
  assertEquals(await Effect.runPromise(restoreState(s, good)), loop);
  assertEquals(Array.from(s.get("model.w")!.data as Float32Array), [1, 2, 3, 4, 5, 6]);

  const message = async (ckpt: typeof good) => {
    const exit = await Effect.runPromiseExit(restoreState(state(), ckpt));
    assert(Exit.isFailure(exit));
    return String(exit.cause);
  };
  assert(
    (await message({ ...good, tensors: {} as never })).includes(
      "ck.safetensors: lacks 1 of the model's 1 state tensors: model.w",
    ),
  );
  const wrongShape = { ...good, tensors: { "model.w": { ...good.tensors["model.w"], shape: [3, 2] } } };
  assert((await message(wrongShape)).includes('tensor "model.w" is [3,2], the model expects [2,3]'));
  const badMeta = {
    ...good,
    metadata: { [LOOP_STATE_KEY]: JSON.stringify({ ...loop, position: { epoch: -1 } }) },
  };
  assert((await message(badMeta)).includes(`metadata "${LOOP_STATE_KEY}" is invalid`));
});

Deno.test("run state: dropout noise is a pure function of (seed, step, site)", () => {
  const site = { name: "noise:model.drop", dtype: "float32" as const, shape: [4] };
  assertEquals(
    Array.from(noiseFeed(1, 5, site).data as Float32Array),
    Array.from(noiseFeed(1, 5, site).data as Float32Array),
  );
  assert(
    Array.from(noiseFeed(1, 6, site).data as Float32Array).join() !==
      Array.from(noiseFeed(1, 5, site).data as Float32Array).join(),
  );
  assert((noiseFeed(1, 5, site).data as Float32Array).every((v) => v >= 0 && v < 1));
});
