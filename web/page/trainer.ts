/**
 * The training loop of the page, independent of which onnxruntime runs it (onnxruntime-web in the tab's
 * worker; onnxruntime-node in tests): each step feeds the step graph the current state, the next shard
 * batch, the step's learning rate and number, and dropout noise drawn exactly as kappa draws it
 * (core/random.ts, addressed by seed, step and site), then replaces every state entry by its `next:`
 * output — what `deno task train` does with the same graph (train/train.ts).
 */
import { random } from "../../core/random.ts";
import { decodeSafetensors, encodeSafetensors, type Tensor } from "./safetensors.ts";

/** `training.json` (train/export_training.ts writes it; a test checks the two types agree). */
export interface TrainingSettings {
  readonly format: string;
  readonly experiment: string;
  readonly source: string;
  readonly checkpoint: string | null;
  readonly seed: number;
  readonly batchSize: number;
  readonly cropSize: readonly [number, number];
  readonly classes: number;
  readonly ignoreIndex: number;
  readonly classNames: readonly string[];
  readonly classColors: readonly (readonly [number, number, number])[];
  readonly mean: readonly number[];
  readonly std: readonly number[];
  readonly startStep: number;
  readonly lr: readonly number[];
  readonly schedule: string;
  readonly feeds: readonly TensorSpec[];
  readonly batchFeeds: readonly string[];
  readonly state: readonly TensorSpec[];
  readonly updated: readonly string[];
  readonly losses: readonly string[];
  readonly noise: {
    readonly key: number;
    readonly sites: readonly (TensorSpec & { readonly key: number })[];
  };
  readonly shard: {
    readonly samples: number;
    readonly batches: number;
    readonly positions: readonly { readonly epoch: number; readonly index: number }[];
    readonly next: { readonly epoch: number; readonly index: number };
    readonly ids: readonly string[];
  };
  readonly loop: {
    readonly position: { readonly epoch: number; readonly index: number };
    readonly interval: { readonly losses: Readonly<Record<string, number>>; readonly images: number };
    readonly elapsedSeconds: number;
  };
  readonly inferParameters: readonly string[];
}

export interface TensorSpec {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
}

export const TRAINING_FORMAT = "kappa-web-training/1";

/** What onnxruntime-web and onnxruntime-node both offer (their common API), as far as the trainer uses it. */
export interface OrtTensor {
  readonly data: unknown;
  readonly dims: readonly number[];
}
export interface OrtSession {
  run(feeds: Record<string, OrtTensor>, fetches?: readonly string[]): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
export interface OrtLike {
  readonly InferenceSession: { create(bytes: Uint8Array, options?: object): Promise<OrtSession> };
  readonly Tensor: new (
    type: "float32" | "int32",
    data: Float32Array | Int32Array,
    dims: readonly number[],
  ) => OrtTensor;
}

export interface StepRecord {
  /** The step number kappa would give it (startStep + 1 for the first step of the page). */
  readonly step: number;
  readonly lr: number;
  /** The total loss (the first of `settings.losses`), then every loss output by name. */
  readonly loss: number;
  readonly losses: Readonly<Record<string, number>>;
  /** Seconds of this step's `session.run`. */
  readonly seconds: number;
}

export interface Trainer {
  readonly settings: TrainingSettings;
  /** Steps made so far. */
  readonly done: () => number;
  readonly history: readonly StepRecord[];
  /** Runs one step; throws when the step budget (settings.lr) is used up. */
  readonly step: () => Promise<StepRecord>;
  /** The current state tensors by name. */
  readonly state: ReadonlyMap<string, Float32Array>;
  /** The state as a checkpoint `deno task eval / predict / export --checkpoint` accept (a run's layout). */
  readonly checkpoint: () => Uint8Array;
  readonly release: () => Promise<void>;
}

/** Dropout noise of one site at one step: train/run_state.ts's `noiseFeed`, element for element. */
export const noise = (
  seed: number,
  key: number,
  step: number,
  siteKey: number,
  count: number,
): Float32Array => {
  const rng = random(seed, key, step, siteKey);
  const data = new Float32Array(count);
  for (let i = 0; i < data.length; i++) data[i] = rng.uniform();
  return data;
};

const count = (shape: readonly number[]) => shape.reduce((n, d) => n * d, 1);

/** Checks `training.json` against the state and shard it came with; throws a line naming what is wrong. */
const checkFiles = (
  settings: TrainingSettings,
  state: ReadonlyMap<string, Tensor>,
  shard: ReadonlyMap<string, Tensor>,
) => {
  if (settings.format !== TRAINING_FORMAT) {
    throw new Error(
      `training.json: format ${JSON.stringify(settings.format)}, the page reads ${TRAINING_FORMAT}`,
    );
  }
  for (const s of settings.state) {
    const t = state.get(s.name);
    if (!t) throw new Error(`state.safetensors: has no tensor "${s.name}"`);
    if (t.dtype !== "F32" || t.shape.join() !== s.shape.join()) {
      throw new Error(
        `state.safetensors: "${s.name}" is ${t.dtype}[${t.shape}], the step graph reads float32[${s.shape}]`,
      );
    }
  }
  for (const name of settings.batchFeeds) {
    const t = shard.get(name);
    if (!t) throw new Error(`shard.safetensors: has no tensor "${name}"`);
    if (t.shape[0] !== settings.shard.samples) {
      throw new Error(
        `shard.safetensors: "${name}" has ${
          t.shape[0]
        } samples, training.json says ${settings.shard.samples}`,
      );
    }
  }
};

/** Opens the step graph and the initial state; `sessionOptions` go to `InferenceSession.create`. */
export const makeTrainer = async (
  ort: OrtLike,
  files: { readonly step: Uint8Array; readonly state: Uint8Array; readonly shard: Uint8Array },
  settings: TrainingSettings,
  sessionOptions: object = {},
): Promise<Trainer> => {
  const stateFile = decodeSafetensors(files.state, "state.safetensors");
  const shardFile = decodeSafetensors(files.shard, "shard.safetensors");
  checkFiles(settings, stateFile.tensors, shardFile.tensors);
  const session = await ort.InferenceSession.create(files.step, sessionOptions);
  const state = new Map(
    settings.state.map((s) => [s.name, stateFile.tensors.get(s.name)!.data as Float32Array]),
  );
  const fetches = [...settings.losses, ...settings.updated.map((n) => `next:${n}`)];
  const history: StepRecord[] = [];
  let seconds = 0;

  /** Samples [from, from + batchSize) of a shard tensor. */
  const batchOf = (name: string, batch: number, spec: TensorSpec) => {
    const t = shardFile.tensors.get(name)!;
    const per = count(t.shape.slice(1));
    const from = batch * settings.batchSize * per;
    const data = t.data.slice(from, from + settings.batchSize * per) as Float32Array | Int32Array;
    return new ort.Tensor(spec.dtype === "int32" ? "int32" : "float32", data, spec.shape);
  };

  const step = async (): Promise<StepRecord> => {
    const i = history.length;
    if (i >= settings.lr.length) {
      throw new Error(
        `the exported step budget (${settings.lr.length} steps) is used up; export with more steps`,
      );
    }
    const s = settings.startStep + i + 1;
    const lr = settings.lr[i];
    const batch = i % settings.shard.batches;
    const feeds: Record<string, OrtTensor> = {};
    for (const f of settings.feeds) {
      if (settings.batchFeeds.includes(f.name)) feeds[f.name] = batchOf(f.name, batch, f);
      else if (f.name === "lr") feeds.lr = new ort.Tensor("float32", Float32Array.of(lr), []);
      else if (f.name === "step") feeds.step = new ort.Tensor("float32", Float32Array.of(s), []);
    }
    for (const site of settings.noise.sites) {
      feeds[site.name] = new ort.Tensor(
        "float32",
        noise(settings.seed, settings.noise.key, s, site.key, count(site.shape)),
        site.shape,
      );
    }
    for (const spec of settings.state) {
      feeds[spec.name] = new ort.Tensor("float32", state.get(spec.name)!, spec.shape);
    }
    const t0 = performance.now();
    const out = await session.run(feeds, fetches);
    const took = (performance.now() - t0) / 1000;
    seconds += took;
    for (const name of settings.updated) state.set(name, out[`next:${name}`].data as Float32Array);
    const losses = Object.fromEntries(
      settings.losses.map((l) => [l, Number((out[l].data as Float32Array)[0])]),
    );
    const record = { step: s, lr, loss: losses[settings.losses[0]], losses, seconds: took };
    history.push(record);
    return record;
  };

  const checkpoint = () => {
    const tensors = new Map<string, Tensor>(
      settings.state.map((s) => [s.name, { dtype: "F32", shape: s.shape, data: state.get(s.name)! }]),
    );
    const done = history.length;
    const loop = {
      // The loader position after the shard's batches: a resumed run goes on past what the page saw.
      position: done > 0 ? settings.shard.next : settings.loop.position,
      interval: { losses: {}, images: 0 },
      elapsedSeconds: settings.loop.elapsedSeconds + seconds,
    };
    return encodeSafetensors(tensors, {
      "checkpoint.step": JSON.stringify(settings.startStep + done),
      "train.loop": JSON.stringify(loop),
      "train.seed": JSON.stringify(settings.seed),
      "train.web": JSON.stringify({
        experiment: settings.experiment,
        from: settings.source,
        steps: done,
        shard: settings.shard.ids,
        losses: history.map((h) => h.loss),
      }),
    });
  };

  return {
    settings,
    done: () => history.length,
    history,
    step,
    state,
    checkpoint,
    release: () => session.release(),
  };
};
