/**
 * A frozen backbone's feature cache on disk, and the training loader that reads it.
 *
 * A cache holds the backbone's outputs (float16) for every image of the training split under N seeded
 * augmentation draws, with the labels and targets of the same draws; it is written once and read by every
 * run and seed that shares it (train/feature_cache.ts chooses its key, builds it under a lock and
 * publishes it with one rename). Layout of `<root>/<key>/`:
 *
 * ```
 * manifest.json                 written last: what the cache holds, every file's size and SHA-256
 * draw-DDDD-SSSS.safetensors    draw D, shard S (consecutive samples of the split), one row per sample:
 *   features.<i>  F16 [count, …]      the feature graph's outputs (float16: half the bytes of float32)
 *   labels        U8|I32 [count, H, W] the training labels of the same draw (U8 when every id fits)
 *   imageLabels   U8 [count, K]        when the dataset gives image-level labels
 *   segmentIds    I32 [count, H, W]    panoptic datasets (the segments in the metadata, `segments`)
 * ```
 *
 * The shards are plain safetensors files (Python's `safetensors` reads them). A step reads only its
 * samples' rows, at the offsets the headers give (positioned reads), so a run's memory does not grow
 * with the cache. Opening checks the manifest, every file's size, header and SHA-256 before anything is
 * read: a truncated, corrupt or partial cache is found up front, named in one line.
 *
 * The loader follows the ordinary training order (`trainingSlots`: one shuffle per epoch from the run's
 * seed, batches of whole samples) and picks the draw of each sample at each position from the run's seed
 * too (`drawChoice`), so two seeds see different draw sequences from one cache, and a resumed run
 * continues with exactly the batches of a run that never stopped.
 */
import { Data, Effect, Schema, type Scope, Stream } from "effect";
import { createHash } from "node:crypto";
import { type FileHandle, open, stat } from "node:fs/promises";
import { join } from "node:path";
import { random } from "../core/random.ts";
import { type JsonFileError, readJsonFile } from "../io/json_file.ts";
import {
  decodeSafetensorsHeader,
  encodeSafetensors,
  type SafetensorsHeader,
  type Tensor as SafeTensor,
} from "../io/safetensors.ts";
import type { FeatureBatch, Position } from "./batch.ts";
import type { PanopticLabels } from "./dataset.ts";
import { type Slot, trainingSlots } from "./order.ts";
import { batchNumber, imageLevelPosition, imageLevelSeed } from "./mixed_loader.ts";
import { type ImageLevelData, imageLevelShares, isPartial } from "../dsl/dataset.ts";

/** The format's version: part of every cache key, so a change of format builds new caches. */
export const FEATURE_CACHE_VERSION = 1;
export const MANIFEST = "manifest.json";

/** A cache that cannot be used: missing, partial, corrupt, or not what the run needs. */
export class FeatureCacheError
  extends Data.TaggedError("FeatureCacheError")<{ readonly file: string; readonly reason: string }> {
  override get message(): string {
    return `${this.file}: ${this.reason}`;
  }
}

const Count = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0));
const Positive = Schema.Int.check(Schema.isGreaterThan(0));

/** What the rows of a cache hold, besides the sample ids. */
export const CacheLayout = Schema.Struct({
  /** The feature graph's outputs, in order, each with its per-image shape. */
  features: Schema.Array(Schema.Struct({ name: Schema.String, shape: Schema.Array(Positive) })),
  height: Positive,
  width: Positive,
  /** U8 when every label (the ignore index included) fits a byte. */
  labels: Schema.Literals(["U8", "I32"]),
  /** K, when the rows hold image-level labels. */
  imageLabels: Schema.NullOr(Positive),
  panoptic: Schema.Boolean,
});
export type CacheLayout = typeof CacheLayout.Type;

/** One shard file: draw `draw`, the split's samples `first` … `first + count − 1`. */
const ShardEntry = Schema.Struct({
  name: Schema.String,
  draw: Count,
  first: Count,
  count: Positive,
  bytes: Positive,
  sha256: Schema.String,
});
export type ShardEntry = typeof ShardEntry.Type;

export const Manifest = Schema.Struct({
  version: Schema.Literal(FEATURE_CACHE_VERSION),
  key: Schema.String,
  /** What the key hashes: backbone, weights digest, pipeline, dataset and its listing, draws (for people). */
  identity: Schema.Unknown,
  draws: Positive,
  /** The split's sample ids in order: a row's index is the sample's index in the split. */
  ids: Schema.Array(Schema.String),
  layout: CacheLayout,
  files: Schema.Array(ShardEntry),
  /**
   * When and how fast it was built, and the machine's 1-minute load average as the build started and
   * ended (reported; no part of any result).
   */
  build: Schema.Struct({
    createdAt: Schema.String,
    seconds: Schema.Number,
    loadAverage: Schema.optionalKey(Schema.Tuple([Schema.Number, Schema.Number])),
  }),
});
export type Manifest = typeof Manifest.Type;

/** The shard file of draw `draw` starting with shard `shard`. */
export const shardName = (draw: number, shard: number): string =>
  `draw-${String(draw).padStart(4, "0")}-${String(shard).padStart(4, "0")}.safetensors`;

/** One sample's row: the backbone's outputs and the labels and targets of its draw. */
export interface CachedRow {
  readonly id: string;
  /** Per feature-graph output, float32 (converted from the stored float16). */
  readonly features: readonly Float32Array[];
  readonly labels: Int32Array;
  readonly imageLabels?: Uint8Array;
  readonly panoptic?: PanopticLabels;
}

const f16Bits = (x: Float32Array) => {
  const half = new Float16Array(x);
  return new Uint16Array(half.buffer, half.byteOffset, half.length);
};

/** A shard's safetensors bytes from its rows (every row shaped as `layout` says). */
export const encodeShard = (
  layout: CacheLayout,
  draw: number,
  first: number,
  rows: readonly CachedRow[],
): Uint8Array => {
  const n = rows.length;
  const plane = layout.height * layout.width;
  const stack = <A extends Float32Array | Int32Array | Uint8Array>(
    make: (length: number) => A,
    size: number,
    get: (r: CachedRow) => ArrayLike<number>,
  ) => {
    const out = make(n * size);
    rows.forEach((r, i) => out.set(get(r), i * size));
    return out;
  };
  const tensors: Record<string, SafeTensor> = {};
  layout.features.forEach(({ name, shape }, f) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = stack((l) => new Float32Array(l), size, (r) => r.features[f]);
    tensors[name] = { dtype: "F16", shape: [n, ...shape], data: f16Bits(data) };
  });
  tensors.labels = layout.labels === "U8"
    ? {
      dtype: "U8",
      shape: [n, layout.height, layout.width],
      data: stack((l) => new Uint8Array(l), plane, (r) => r.labels),
    }
    : {
      dtype: "I32",
      shape: [n, layout.height, layout.width],
      data: stack((l) => new Int32Array(l), plane, (r) => r.labels),
    };
  if (layout.imageLabels !== null) {
    const k = layout.imageLabels;
    tensors.imageLabels = {
      dtype: "U8",
      shape: [n, k],
      data: stack((l) => new Uint8Array(l), k, (r) => r.imageLabels!),
    };
  }
  const metadata: Record<string, string> = {
    draw: String(draw),
    first: String(first),
    ids: JSON.stringify(rows.map((r) => r.id)),
  };
  if (layout.panoptic) {
    tensors.segmentIds = {
      dtype: "I32",
      shape: [n, layout.height, layout.width],
      data: stack((l) => new Int32Array(l), plane, (r) => r.panoptic!.segmentIds),
    };
    metadata.segments = JSON.stringify(rows.map((r) => r.panoptic!.segments));
  }
  return encodeSafetensors(tensors, metadata);
};

/** The hex SHA-256 of bytes. */
export const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** An opened cache: its manifest and a reader of rows. */
export interface FeatureCache {
  readonly dir: string;
  readonly manifest: Manifest;
  /** The total bytes of its files (manifest included). */
  readonly bytes: number;
  /** Sample `index`'s row under draw `draw`. */
  readonly read: (draw: number, index: number) => Effect.Effect<CachedRow, FeatureCacheError>;
}

interface OpenShard {
  readonly entry: ShardEntry;
  readonly handle: FileHandle;
  readonly header: SafetensorsHeader;
  readonly ids: readonly string[];
  readonly segments?: readonly PanopticLabels["segments"][];
}

const describe = (e: unknown) => (e instanceof Error ? e.message : String(e)).split("\n")[0];

/** What the manifest promises of a shard's tensors: name → [dtype, shape]. */
const expectedTensors = (layout: CacheLayout, count: number): Map<string, [string, number[]]> => {
  const plane = [count, layout.height, layout.width];
  const m = new Map<string, [string, number[]]>();
  for (const f of layout.features) m.set(f.name, ["F16", [count, ...f.shape]]);
  m.set("labels", [layout.labels, plane]);
  if (layout.imageLabels !== null) m.set("imageLabels", ["U8", [count, layout.imageLabels]]);
  if (layout.panoptic) m.set("segmentIds", ["I32", plane]);
  return m;
};

const readAt = (handle: FileHandle, length: number, position: number, file: string) =>
  Effect.tryPromise({
    try: async () => {
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(out, done, length - done, position + done);
        if (bytesRead === 0) {
          throw new Error(`ends ${length - done} bytes early at offset ${position + done}`);
        }
        done += bytesRead;
      }
      return out;
    },
    catch: (e) => new FeatureCacheError({ file, reason: `cannot read: ${describe(e)}` }),
  });

/** Streams a whole file through SHA-256 (in pieces, so a large shard is never held twice). */
const fileSha256 = (handle: FileHandle, size: number, file: string) =>
  Effect.tryPromise({
    try: async () => {
      const hash = createHash("sha256");
      const piece = new Uint8Array(Math.min(size, 8 << 20));
      for (let at = 0; at < size;) {
        const { bytesRead } = await handle.read(piece, 0, Math.min(piece.length, size - at), at);
        if (bytesRead === 0) break;
        hash.update(piece.subarray(0, bytesRead));
        at += bytesRead;
      }
      return hash.digest("hex");
    },
    catch: (e) => new FeatureCacheError({ file, reason: `cannot read: ${describe(e)}` }),
  });

/** Opens one shard and checks it against its manifest entry: size, header, tensors, SHA-256. */
const openShard = (dir: string, entry: ShardEntry, layout: CacheLayout) =>
  Effect.gen(function* () {
    const file = join(dir, entry.name);
    const fail = (reason: string) => new FeatureCacheError({ file, reason });
    const handle = yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => open(file, "r"), catch: (e) => fail(`cannot open: ${describe(e)}`) }),
      (h) => Effect.promise(() => h.close().catch(() => undefined)),
    );
    const size = (yield* Effect.tryPromise({
      try: () => handle.stat(),
      catch: (e) => fail(describe(e)),
    })).size;
    if (size !== entry.bytes) {
      return yield* fail(`is ${size} bytes, the manifest says ${entry.bytes} (truncated or replaced)`);
    }
    const prefix = yield* readAt(handle, Math.min(8, size), 0, file);
    const length = size >= 8 ? Number(new DataView(prefix.buffer).getBigUint64(0, true)) : 0;
    if (8 + length > size) return yield* fail(`header length ${length} runs past the file's ${size} bytes`);
    const head = yield* readAt(handle, 8 + length, 0, file);
    const header = yield* decodeSafetensorsHeader(head, size, file).pipe(
      Effect.mapError((e) => fail(e.message.startsWith(file) ? e.message.slice(file.length + 2) : e.message)),
    );
    const expected = expectedTensors(layout, entry.count);
    for (const [name, [dtype, shape]] of expected) {
      const t = header.entries.find((x) => x.name === name);
      if (!t) return yield* fail(`has no tensor "${name}"`);
      if (t.dtype !== dtype || t.shape.join() !== shape.join()) {
        return yield* fail(
          `tensor "${name}" is ${t.dtype} [${t.shape}], the manifest says ${dtype} [${shape}]`,
        );
      }
    }
    const digest = yield* fileSha256(handle, size, file);
    if (digest !== entry.sha256) return yield* fail("its SHA-256 differs from the manifest's (corrupt)");
    const meta = header.metadata;
    const parse = (key: string) => {
      try {
        return JSON.parse(meta[key] ?? "null");
      } catch {
        return null;
      }
    };
    const ids = parse("ids");
    if (!Array.isArray(ids) || ids.length !== entry.count) {
      return yield* fail(
        'metadata "ids" is missing or wrong',
      );
    }
    const segments = layout.panoptic ? parse("segments") : undefined;
    if (layout.panoptic && (!Array.isArray(segments) || segments.length !== entry.count)) {
      return yield* fail('metadata "segments" is missing or wrong');
    }
    return { entry, handle, header, ids, ...(segments ? { segments } : {}) } satisfies OpenShard;
  });

/**
 * Opens the cache in `dir` for the enclosing Scope and checks all of it: the manifest (with Schema), then
 * every shard's size, header, tensors and SHA-256 (`FeatureCacheError` naming the file and the problem).
 * A directory without a manifest is a cache that was never finished.
 */
export const openFeatureCache = (
  dir: string,
): Effect.Effect<FeatureCache, FeatureCacheError, Scope.Scope> =>
  Effect.gen(function* () {
    const manifestFile = join(dir, MANIFEST);
    const json = yield* readJsonFile(manifestFile).pipe(
      Effect.mapError((e: JsonFileError) =>
        new FeatureCacheError({
          file: manifestFile,
          reason: e.problem === "cannot read"
            ? `missing (a cache that was never finished): ${e.detail}`
            : e.message,
        })
      ),
    );
    const decoded = Schema.decodeUnknownResult(Manifest)(json);
    if (decoded._tag === "Failure") {
      return yield* new FeatureCacheError({
        file: manifestFile,
        reason: `not a manifest of this version: ${describe(decoded.failure.message).replace(/\s+/g, " ")}`,
      });
    }
    const manifest = decoded.success;
    const n = manifest.ids.length;
    const shards = new Map<number, OpenShard[]>();
    for (const entry of manifest.files) {
      const shard = yield* openShard(dir, entry, manifest.layout);
      shards.set(entry.draw, [...(shards.get(entry.draw) ?? []), shard]);
    }
    for (let d = 0; d < manifest.draws; d++) {
      const covered = (shards.get(d) ?? []).reduce((a, s) => a + s.entry.count, 0);
      if (covered !== n) {
        return yield* new FeatureCacheError({
          file: manifestFile,
          reason: `draw ${d} covers ${covered} of the ${n} samples`,
        });
      }
    }
    const manifestBytes = (yield* Effect.tryPromise({
      try: () => stat(manifestFile),
      catch: (e) => new FeatureCacheError({ file: manifestFile, reason: describe(e) }),
    })).size;
    const layout = manifest.layout;
    const read = (draw: number, index: number) =>
      Effect.gen(function* () {
        const shard = shards.get(draw)?.find((s) =>
          index >= s.entry.first && index < s.entry.first + s.entry.count
        );
        if (!shard) {
          return yield* new FeatureCacheError({
            file: dir,
            reason: `no row for draw ${draw}, sample ${index}`,
          });
        }
        const row = index - shard.entry.first;
        const file = join(dir, shard.entry.name);
        const bytesOf = (name: string) =>
          Effect.gen(function* () {
            const t = shard.header.entries.find((x) => x.name === name)!;
            const rowBytes = (t.end - t.begin) / shard.entry.count;
            return yield* readAt(
              shard.handle,
              rowBytes,
              shard.header.dataStart + t.begin + row * rowBytes,
              file,
            );
          });
        const features: Float32Array[] = [];
        for (const f of layout.features) {
          const bytes = yield* bytesOf(f.name);
          features.push(Float32Array.from(new Float16Array(bytes.buffer, 0, bytes.length / 2)));
        }
        const labelBytes = yield* bytesOf("labels");
        const labels = layout.labels === "U8"
          ? Int32Array.from(labelBytes)
          : new Int32Array(labelBytes.buffer);
        const imageLabels = layout.imageLabels === null ? undefined : yield* bytesOf("imageLabels");
        const panoptic = layout.panoptic
          ? {
            segmentIds: new Int32Array((yield* bytesOf("segmentIds")).buffer),
            segments: shard.segments![row],
          }
          : undefined;
        return {
          id: shard.ids[row],
          features,
          labels,
          ...(imageLabels ? { imageLabels } : {}),
          ...(panoptic ? { panoptic } : {}),
        } satisfies CachedRow;
      });
    const bytes = manifestBytes + manifest.files.reduce((a, f) => a + f.bytes, 0);
    return { dir, manifest, bytes, read } satisfies FeatureCache;
  });

/** Key of the per-position draw choice: `random(seed, DRAW_CHOICE, epoch, index)`. */
export const DRAW_CHOICE = 0x43484f53; // "CHOS"

/** Which of `draws` cached draws the sample at `index` of epoch `epoch`'s order uses in a run of `seed`. */
export const drawChoice = (seed: number, epoch: number, index: number, draws: number): number =>
  random(seed, DRAW_CHOICE, epoch, index).int(draws);

/** Stacks rows of one batch into a `FeatureBatch`. */
const collateRows = (cache: FeatureCache, rows: readonly CachedRow[], position: Position): FeatureBatch => {
  const { layout } = cache.manifest;
  const n = rows.length;
  const plane = layout.height * layout.width;
  const features = layout.features.map((f, i) => {
    const size = f.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n * size);
    rows.forEach((r, b) => data.set(r.features[i], b * size));
    return { data, shape: [n, ...f.shape] };
  });
  const labels = new Int32Array(n * plane);
  rows.forEach((r, b) => labels.set(r.labels, b * plane));
  const k = layout.imageLabels;
  const imageLabels = k === null ? undefined : new Uint8Array(n * k);
  if (imageLabels) rows.forEach((r, b) => imageLabels.set(r.imageLabels!, b * k!));
  return {
    features,
    labels,
    batchSize: n,
    height: layout.height,
    width: layout.width,
    ids: rows.map((r) => r.id),
    position,
    ...(imageLabels ? { imageLabels } : {}),
    ...(layout.panoptic ? { panoptic: rows.map((r) => r.panoptic!) } : {}),
  };
};

export interface CachedLoaderOptions {
  readonly batchSize: number;
  /** The run's seed: the epoch order and each position's draw. */
  readonly seed: number;
  /** A batch boundary of the training order (default epoch 0, index 0). */
  readonly start?: Position;
  /** Batches read ahead (default 2). */
  readonly prefetch?: number;
}

/**
 * An endless stream of training batches from a cache: the training order of `trainingSlots` (whole
 * batches, the last incomplete one of each epoch dropped, as the image loader does), each sample's row
 * from the draw `drawChoice` picks for its position.
 */
export const cachedTrainLoader = (
  cache: FeatureCache,
  { batchSize, seed, start = { epoch: 0, index: 0 }, prefetch = 2 }: CachedLoaderOptions,
): Stream.Stream<FeatureBatch, FeatureCacheError> => {
  const n = cache.manifest.ids.length;
  const draws = cache.manifest.draws;
  const batches = Stream.fromIterable(trainingSlots(n, batchSize, true, seed, start)).pipe(
    Stream.grouped(batchSize),
    Stream.mapEffect((slots) =>
      Effect.map(
        Effect.forEach(
          slots,
          (s) => cache.read(drawChoice(seed, s.epoch, s.index, draws), s.sample),
          { concurrency: batchSize },
        ),
        (rows) => collateRows(cache, rows, slots[0].batch),
      )
    ),
  );
  return prefetch > 0 ? batches.pipe(Stream.buffer({ capacity: prefetch })) : batches;
};

export interface CachedMixedLoaderOptions extends CachedLoaderOptions {
  /** `data.imageLevel`'s sources in order: each one's share of the batch and its label semantics. */
  readonly sources: readonly ImageLevelData[];
}

/**
 * LarvSeg's mixed batches (`mixed_loader.ts`) from caches: per batch, `pixel` rows of the split's cache
 * then each source's rows from its own cache, at the positions `mixedTrainLoader` gives them (the same
 * orders, source i's addressed by `imageLevelSeed(seed, i)`, its position fixed by the batch number, so a
 * resume from any batch boundary continues bitwise), each row from the draw `drawChoice` picks for its
 * position under its order's seed. `pixelLabelled` marks the first part; `imageLabelsKnown` is all ones
 * but for a `partial` source's rows (their listed classes); pixel rows without image-level labels (a
 * dataset spec without `imageLabels`) get an empty row, as the mixed loader gives them.
 */
export const cachedMixedTrainLoader = (
  pixels: FeatureCache,
  images: readonly FeatureCache[],
  { batchSize, seed, sources, start = { epoch: 0, index: 0 }, prefetch = 2 }: CachedMixedLoaderOptions,
): Stream.Stream<FeatureBatch, FeatureCacheError> => {
  const share = imageLevelShares(batchSize, sources);
  const n = pixels.manifest.ids.length;
  const s0 = batchNumber(start, n, share.pixel);
  const orders = images.map((cache, i) => {
    const q = share.perSource[i], m = cache.manifest.ids.length, orderSeed = imageLevelSeed(seed, i);
    return { cache, q, orderSeed, partial: isPartial(sources[i]), from: imageLevelPosition(s0, m, q) };
  });
  const k = images[0]?.manifest.layout.imageLabels ?? 0;
  const read = (cache: FeatureCache, s: Slot, orderSeed: number) =>
    cache.read(drawChoice(orderSeed, s.epoch, s.index, cache.manifest.draws), s.sample);
  const take = (it: Iterator<Slot>, count: number) =>
    Array.from({ length: count }, () => it.next().value as Slot);
  function* groups(): Generator<{ pixel: Slot[]; perSource: Slot[][] }> {
    const p = trainingSlots(n, share.pixel, true, seed, start);
    const qs = orders.map((o) => trainingSlots(o.cache.manifest.ids.length, o.q, true, o.orderSeed, o.from));
    for (;;) yield { pixel: take(p, share.pixel), perSource: qs.map((q, i) => take(q, orders[i].q)) };
  }
  const batches = Stream.fromIterable(groups()).pipe(
    Stream.mapEffect(({ pixel, perSource }) =>
      Effect.map(
        Effect.all([
          Effect.forEach(pixel, (s) => read(pixels, s, seed), { concurrency: share.pixel }),
          ...perSource.map((slots, i) =>
            Effect.forEach(slots, (s) => read(orders[i].cache, s, orders[i].orderSeed), {
              concurrency: orders[i].q,
            })
          ),
        ]),
        ([p, ...qs]): FeatureBatch => {
          const empty = new Uint8Array(k);
          const withLabels = (r: CachedRow) => (r.imageLabels ? r : { ...r, imageLabels: empty });
          const rows = [...p.map(withLabels), ...qs.flat()];
          const known = new Uint8Array(rows.length * k).fill(1);
          let b = p.length;
          qs.forEach((q, i) => {
            for (const r of q) {
              if (orders[i].partial) known.set(r.imageLabels!, b * k);
              b++;
            }
          });
          return {
            ...collateRows(orders[0].cache, rows, pixel[0].batch),
            pixelLabelled: Uint8Array.from(rows, (_, i) => (i < p.length ? 1 : 0)),
            imageLabelsKnown: known,
          };
        },
      )
    ),
  );
  return prefetch > 0 ? batches.pipe(Stream.buffer({ capacity: prefetch })) : batches;
};
