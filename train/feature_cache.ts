/**
 * Finding, building and sharing a frozen backbone's feature cache (`train.frozenBackbone`; the format
 * and its loader are `data/feature_cache.ts`).
 *
 * Key: a hash of everything the cached rows are a function of — the format version, the model kind and
 * its backbone spec, a digest of the backbone's weights (the values the run starts from: the pretrained
 * file's, or the seed's initialization of a backbone without one), the training pipeline, the dataset
 * spec, split and listing (every sample's files with their sizes and modification times), the feature
 * graph's outputs and the number of draws. Runs and seeds that agree on these share one cache; a change
 * to any of them (another crop, another weights file, an edited image) is another cache. LarvSeg's
 * image-level source (`data.imageLevel`) has a cache of its own, keyed by the source's labels file and
 * images in place of the split's listing.
 *
 * Location: `<root>/<key>/`, root `runs/.feature-cache` unless given (`--feature-cache DIR`).
 *
 * Sharing: the first run that needs a cache builds it under `<root>/<key>.lock` (a lock file that
 * appears atomically; a holder that died is recovered as the run folder's lock is), into
 * `<key>.partial-<pid>-<hex>/`, and publishes it with one rename once its manifest is written; others
 * wait for the lock and then open the finished cache. A reader never sees a partial cache: a directory
 * under the key always has its manifest. Opening checks every file's size, header and SHA-256, then that
 * the manifest is the key's (`checkMatch`); a cache that fails (a truncated or edited file, another key's
 * cache under this one's folder) is said in one line, removed and built again.
 */
import { Effect, Stream } from "effect";
import { existsSync, statSync } from "node:fs";
import { link, mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { loadavg } from "node:os";
import type { AnyExperiment } from "../dsl/experiment.ts";
import { specHash } from "../dsl/canonical.ts";
import type { Graph } from "../ir/graph.ts";
import { graphStage, plan } from "../ir/plan.ts";
import { type Value, value } from "../ir/value.ts";
import { execute, type Provider } from "../runtime/execute.ts";
import { writeFileAtomic } from "../io/atomic_write.ts";
import type { Dataset } from "../data/dataset.ts";
import { defaultWorkers, taskRunner } from "../data/loader.ts";
import type { ProcessedSample } from "../data/pipeline.ts";
import type { DatasetSource, SampleTask } from "../data/sample_task.ts";
import type { ImageLevelSource } from "../data/image_level.ts";
import {
  type CachedRow,
  type CacheLayout,
  encodeShard,
  FEATURE_CACHE_VERSION,
  type FeatureCache,
  FeatureCacheError,
  MANIFEST,
  type Manifest,
  openFeatureCache,
  sha256,
  type ShardEntry,
  shardName,
} from "../data/feature_cache.ts";
import { parametersDigest } from "../eval/parameters_digest.ts";
import { holderGone, isRunning, lockHolder, parseHolder } from "./run_lock.ts";

/** Where caches live unless a run says otherwise. */
export const DEFAULT_CACHE_ROOT = join("runs", ".feature-cache");

/** The largest shard file a build writes (bytes, float16 rows): a draw of a large split is several files. */
const SHARD_BYTES = 64 << 20;

export interface CacheRequest {
  readonly e: AnyExperiment;
  /** The kind's feature graph at the training shapes (`images` → `features.<i>`). */
  readonly features: Graph;
  /** The values of the feature graph's variables (the frozen backbone, as the run starts). */
  readonly backbone: ReadonlyMap<string, Value>;
  /** The opened training split (its class table; its images unless `imageLevel` is given). */
  readonly dataset: Dataset;
  /**
   * An image-level source (`data.imageLevel`): the cache holds its images' rows instead of the split's
   * (labels all ignore, image-level labels its tags), a cache of its own beside the split's.
   */
  readonly imageLevel?: ImageLevelSource;
  /** Whether rows carry panoptic segments (the kind's loader says). */
  readonly panoptic: boolean;
  readonly root?: string;
  readonly provider?: Provider;
  readonly threads?: number;
  readonly workers?: number;
  /** Progress and repairs, one line each. */
  readonly print?: (line: string) => void;
}

/** What a run used: the cache, whether this run built it, and what it cost. */
export interface CacheUse {
  readonly dir: string;
  readonly key: string;
  readonly draws: number;
  readonly samples: number;
  readonly bytes: number;
  /** True when this run built it (false: it was there, built by an earlier run). */
  readonly built: boolean;
  /** Seconds its build took (this run's or the earlier one's, from the manifest). */
  readonly buildSeconds: number;
}

const describe = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0];
const code = (e: unknown) => (e as { code?: string }).code;

/** A file with its size and modification time (null, null when it cannot be read). */
const fileStamp = (path: string) => {
  try {
    const st = statSync(path);
    return [path, st.size, st.mtimeMs];
  } catch {
    return [path, null, null];
  }
};

/** The files of every sample of the split, with their sizes and modification times. */
const listing = (dataset: Dataset) =>
  dataset.samples.map((s) => [s.id, fileStamp(s.image), fileStamp(s.mask)]);

/** The image-level source's images with their sizes, modification times and tags. */
const imageLevelListing = (source: ImageLevelSource) =>
  source.samples.map((s) => [s.id, fileStamp(s.image), s.classes]);

/** The ids of the rows a request's cache holds, in row order. */
const rowIds = (r: Pick<CacheRequest, "dataset" | "imageLevel">): readonly string[] =>
  (r.imageLevel?.samples ?? r.dataset.samples).map((s) => s.id);

/** The per-image shapes of the feature graph's outputs. */
const featureShapes = (features: Graph) =>
  [...features.outputs].map(([name, t]) => ({ name, shape: t.shape.slice(1) }));

/** Everything the cached rows are a function of (the module comment); its hash is the key. */
export const cacheIdentity = (
  r: Pick<CacheRequest, "e" | "features" | "backbone" | "dataset" | "panoptic" | "imageLevel">,
) => {
  const draws = r.e.train.frozenBackbone?.draws ?? 0;
  return {
    version: FEATURE_CACHE_VERSION,
    kind: r.e.model._tag,
    backbone: r.e.model.backbone,
    weights: parametersDigest(r.backbone),
    pipeline: r.e.data.train,
    dataset: r.e.data.dataset,
    ...(r.imageLevel
      ? {
        // The source's rows: its labels file, its images (sizes, modification times) and their tags.
        imageLevel: { file: r.imageLevel.file, listing: specHash(imageLevelListing(r.imageLevel)) },
      }
      : { split: r.dataset.split, listing: specHash(listing(r.dataset)) }),
    panoptic: r.panoptic,
    features: featureShapes(r.features),
    draws,
  };
};

/** The cache key: 24 hex digits of the identity's hash. */
export const cacheKey = (identity: unknown): string => specHash(identity).slice(0, 24);

/** `<key>.partial-<pid>-<hex>`: a build in progress (or the leftover of one that died). */
const partialPattern = (key: string) => new RegExp(`^${key}\\.partial-(\\d+)-[0-9a-f]+$`);

/**
 * Holds `<root>/<key>.lock` for the enclosing scope, waiting while a live process holds it (saying so
 * once); a lock whose holder is gone is recovered, one from another host refused (it cannot be checked).
 */
const acquireCacheLock = (root: string, key: string, print: (line: string) => void) => {
  const file = join(root, `${key}.lock`);
  const fail = (reason: string) => new FeatureCacheError({ file, reason });
  const acquire = Effect.gen(function* () {
    const me = lockHolder();
    const temp = `${file}.tmp-${process.pid}-${me.token}`;
    let waiting = false;
    for (;;) {
      yield* Effect.tryPromise({
        try: () => writeFile(temp, JSON.stringify(me) + "\n", { flag: "wx" }),
        catch: (e) => fail(`cannot write ${temp}: ${describe(e)}`),
      });
      const linked = yield* Effect.tryPromise({
        try: () =>
          link(temp, file).then(() => true, (e) => (code(e) === "EEXIST" ? false : Promise.reject(e))),
        catch: (e) => fail(`cannot create: ${describe(e)}`),
      }).pipe(Effect.ensuring(Effect.promise(() => rm(temp, { force: true }))));
      if (linked) return me.token;
      const text = yield* Effect.promise(() => readFile(file, "utf8").catch(() => undefined));
      if (text === undefined) continue; // released between our attempt and the read
      const holder = parseHolder(text);
      if (!holder) {
        return yield* fail("is not a lock this version wrote; if no run builds this cache, remove it");
      }
      if (holder.host !== me.host) {
        return yield* fail(
          `held by PID ${holder.pid} on ${holder.host}, another host, which cannot be checked from here; ` +
            "if that build is gone, remove this file",
        );
      }
      if (holderGone(holder)) {
        // Removed only if it is still the stale holder's file (a fresh one may have replaced it).
        const again = yield* Effect.promise(() => readFile(file, "utf8").catch(() => ""));
        if (parseHolder(again)?.token === holder.token) {
          yield* Effect.promise(() => rm(file, { force: true }));
        }
        print(`${file}: removed a stale lock: PID ${holder.pid} (started ${holder.startedAt}) is gone`);
        continue;
      }
      if (!waiting) {
        print(`${join(root, key)}: waiting for PID ${holder.pid}, which is building this feature cache`);
        waiting = true;
      }
      yield* Effect.sleep("1 second");
    }
  });
  return Effect.acquireRelease(acquire, (token) =>
    Effect.promise(async () => {
      const text = await readFile(file, "utf8").catch(() => "");
      if (parseHolder(text)?.token === token) await rm(file, { force: true });
    }));
};

/** Removes the partial builds of `key` whose builders are gone; returns how many. */
const removeDeadPartials = (root: string, key: string) =>
  Effect.promise(async () => {
    let removed = 0;
    for (const name of await readdir(root).catch(() => [] as string[])) {
      const pid = Number(partialPattern(key).exec(name)?.[1]);
      if (!Number.isInteger(pid) || (pid !== process.pid && isRunning(pid))) continue;
      await rm(join(root, name), { recursive: true, force: true });
      removed++;
    }
    return removed;
  });

/** The rows layout of a run's cache. */
const layoutOf = (r: CacheRequest): CacheLayout => {
  const [height, width] = r.e.data.train.cropSize;
  const k = r.dataset.classes.names.length;
  return {
    features: featureShapes(r.features),
    height,
    width,
    labels: r.dataset.classes.ignoreIndex >= 0 && r.dataset.classes.ignoreIndex <= 255 && k <= 256
      ? "U8"
      : "I32",
    imageLabels: r.imageLevel || r.e.data.dataset.imageLabels !== undefined ? k : null,
    panoptic: r.panoptic,
  };
};

/**
 * Builds the cache into `partial`: per draw, the split's samples in shards, each image through the
 * training pipeline under its draw (Workers decode and augment), the feature graph over batches of the
 * training batch size (the last batch padded with its last image), rows written float16.
 */
const build = (
  r: CacheRequest,
  key: string,
  identity: unknown,
  partial: string,
  print: (line: string) => void,
) =>
  Effect.scoped(Effect.gen(function* () {
    const started = performance.now(), startLoad = loadavg()[0];
    const layout = layoutOf(r);
    const graph = r.features;
    const ex = yield* execute(plan("features", graph, [graphStage(graph, { name: "features" })]), {
      provider: r.provider,
      threads: r.threads,
    });
    for (const name of ex.state.keys()) {
      const v = r.backbone.get(name);
      if (!v) return yield* new FeatureCacheError({ file: partial, reason: `no value for "${name}"` });
      ex.state.set(name, v);
    }
    const images = graph.lookup("images")!;
    const [batch, , height, width] = images.shape;
    const plane = height * width;
    const runRows = (samples: readonly ProcessedSample[]) =>
      Effect.gen(function* () {
        const data = new Float32Array(batch * 3 * plane);
        for (let b = 0; b < batch; b++) {
          data.set(samples[Math.min(b, samples.length - 1)].image, b * 3 * plane);
        }
        const out = yield* ex.run({ images: value("float32", data, images.shape) });
        return samples.map((s, b): CachedRow => ({
          id: s.id,
          features: layout.features.map((f) => {
            const size = f.shape.reduce((a, c) => a * c, 1);
            return (out.get(f.name)!.data as Float32Array).slice(b * size, (b + 1) * size);
          }),
          labels: s.labels,
          ...(s.imageLabels ? { imageLabels: s.imageLabels } : {}),
          ...(s.panoptic ? { panoptic: s.panoptic } : {}),
        }));
      });
    const run = yield* taskRunner(r.dataset, r.workers ?? defaultWorkers());
    const source: DatasetSource = {
      spec: r.e.data.dataset,
      split: r.dataset.split,
      specFile: "<dataset spec>",
    };
    const n = rowIds(r).length;
    const draws = r.e.train.frozenBackbone!.draws;
    const task = (draw: number, index: number): SampleTask =>
      r.imageLevel
        ? {
          kind: "imageLevelDraw",
          source,
          pipeline: r.e.data.train,
          sample: r.imageLevel.samples[index],
          draw,
          index,
        }
        : {
          kind: "draw",
          source,
          pipeline: r.e.data.train,
          sample: r.dataset.samples[index],
          draw,
          index,
          ...(r.panoptic ? { panoptic: true } : {}),
        };
    const rowBytes = layout.features.reduce((a, f) => a + 2 * f.shape.reduce((x, y) => x * y, 1), 0) +
      plane * ((layout.labels === "U8" ? 1 : 4) + (layout.panoptic ? 4 : 0)) + (layout.imageLabels ?? 0);
    const perShard = Math.max(1, Math.floor(SHARD_BYTES / rowBytes));
    const files: ShardEntry[] = [];
    for (let draw = 0; draw < draws; draw++) {
      const t = performance.now();
      for (let shard = 0, first = 0; first < n; shard++, first += perShard) {
        const count = Math.min(perShard, n - first);
        const rows = (yield* Stream.fromIterable(Array.from({ length: count }, (_, i) => first + i)).pipe(
          Stream.mapEffect((index) => run(task(draw, index)), { concurrency: 2 * batch }),
          Stream.grouped(batch),
          Stream.mapEffect(runRows),
          Stream.runCollect,
        )).flat();
        const bytes = encodeShard(layout, draw, first, rows);
        const name = shardName(draw, shard);
        yield* writeFileAtomic(join(partial, name), bytes);
        files.push({ name, draw, first, count, bytes: bytes.length, sha256: sha256(bytes) });
      }
      print(
        `feature cache: draw ${draw + 1}/${draws} of ${n} images in ${
          ((performance.now() - t) / 1000).toFixed(1)
        } s`,
      );
    }
    const manifest: Manifest = {
      version: FEATURE_CACHE_VERSION,
      key,
      identity,
      draws,
      ids: rowIds(r),
      layout,
      files,
      build: {
        createdAt: new Date().toISOString(),
        seconds: (performance.now() - started) / 1000,
        loadAverage: [startLoad, loadavg()[0]],
      },
    };
    yield* writeFileAtomic(join(partial, MANIFEST), JSON.stringify(manifest, null, 2) + "\n");
  }));

/**
 * The opened cache, if it is the one the request's key names: its manifest's key and the hash of the
 * identity it records are that key, its rows are the request's samples in order and its layout the
 * request's. A cache that passes its file checks but fails this (copied or renamed under another key's
 * folder, its manifest edited) is a `FeatureCacheError` naming the manifest.
 */
export const checkMatch = (cache: FeatureCache, r: CacheRequest, key: string) => {
  const m = cache.manifest;
  const fail = (reason: string) =>
    Effect.fail(new FeatureCacheError({ file: join(cache.dir, MANIFEST), reason: `${reason} (mismatched)` }));
  if (m.key !== key) return fail(`is the manifest of cache ${m.key}, not of ${key}`);
  if (cacheKey(m.identity) !== key) {
    return fail(`its identity hashes to ${cacheKey(m.identity)}, not to its key ${key}`);
  }
  const ids = rowIds(r);
  if (m.ids.length !== ids.length || m.ids.some((id, i) => id !== ids[i])) {
    return fail(`its ${m.ids.length} rows are not the ${ids.length} samples this run reads, in order`);
  }
  if (specHash(m.layout) !== specHash(layoutOf(r))) {
    return fail(`its rows' layout ${JSON.stringify(m.layout)} is not ${JSON.stringify(layoutOf(r))}`);
  }
  return Effect.succeed(cache);
};

const megabytes = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/**
 * The run's cache, opened and checked for the enclosing scope: found under its key, or built there first
 * (under the key's lock, so concurrent runs build it once). A cache that fails its check is said, removed
 * and built again.
 */
export const ensureFeatureCache = (r: CacheRequest) =>
  Effect.gen(function* () {
    const print = r.print ?? ((line: string) => console.error(line));
    const root = r.root ?? DEFAULT_CACHE_ROOT;
    const identity = cacheIdentity(r);
    const key = cacheKey(identity);
    const dir = join(root, key);
    const opened = (cache: FeatureCache, built: boolean): { cache: FeatureCache; use: CacheUse } => ({
      cache,
      use: {
        dir,
        key,
        draws: cache.manifest.draws,
        samples: cache.manifest.ids.length,
        bytes: cache.bytes,
        built,
        buildSeconds: cache.manifest.build.seconds,
      },
    });
    const manifestText = Effect.promise(() => readFile(join(dir, MANIFEST), "utf8").catch(() => undefined));
    const seen = yield* manifestText;
    let failure: FeatureCacheError | undefined;
    if (seen !== undefined) {
      const found = yield* Effect.result(
        Effect.flatMap(openFeatureCache(dir), (cache) => checkMatch(cache, r, key)),
      );
      if (found._tag === "Success") return opened(found.success, false);
      failure = found.failure;
    }
    yield* Effect.tryPromise({
      try: () => mkdir(root, { recursive: true }),
      catch: (e) => new FeatureCacheError({ file: root, reason: `cannot create: ${describe(e)}` }),
    });
    const built = yield* Effect.scoped(Effect.gen(function* () {
      yield* acquireCacheLock(root, key, print);
      // Another run may have built (or rebuilt) it while this one waited for the lock.
      const now = yield* manifestText;
      if (now !== undefined && (failure === undefined || now !== seen)) return false;
      if (existsSync(dir)) {
        print(
          `${
            failure?.message ?? `${join(dir, MANIFEST)}: missing`
          }; removing ${dir} and building the cache again`,
        );
        yield* Effect.promise(() => rm(dir, { recursive: true, force: true }));
      }
      const dead = yield* removeDeadPartials(root, key);
      if (dead > 0) {
        print(`${dir}: removed ${dead} unfinished build${dead === 1 ? "" : "s"} of a process that is gone`);
      }
      const partial = join(root, `${key}.partial-${process.pid}-${lockHolder().token}`);
      yield* Effect.promise(() => mkdir(partial, { recursive: true }));
      print(
        `feature cache: building ${dir} (${r.e.train.frozenBackbone!.draws} draws of ${rowIds(r).length} ${
          r.imageLevel ? "image-level " : ""
        }` +
          "images, float16)",
      );
      yield* build(r, key, identity, partial, print).pipe(
        Effect.onError(() => Effect.promise(() => rm(partial, { recursive: true, force: true }))),
      );
      yield* Effect.tryPromise({
        try: () => rename(partial, dir),
        catch: (e) =>
          new FeatureCacheError({ file: dir, reason: `cannot publish the build: ${describe(e)}` }),
      });
      return true;
    }));
    const use = opened(yield* Effect.flatMap(openFeatureCache(dir), (c) => checkMatch(c, r, key)), built);
    if (built) {
      print(
        `feature cache: built in ${use.use.buildSeconds.toFixed(1)} s, ${megabytes(use.use.bytes)} (${dir})`,
      );
    }
    return use;
  });
