/**
 * Decoding image and mask files with sharp (libvips) into plain pixel arrays.
 *
 * Gotchas: sharp converts single-band images to sRGB on raw output unless told otherwise, so masks are
 * read through an explicit grey colourspace; palette PNG masks are rejected because libvips expands the
 * palette to colors and the class indices are lost; truncated or corrupt data is an error (`failOn`),
 * never a partially grey image.
 *
 * Every decode here is guarded by a pixel limit (`maxPixels`, default `DEFAULT_MAX_PIXELS`) that is checked
 * against the file's header before any pixel is decoded: a 16000×16000 PNG is 1 MB on disk, under sharp's
 * own limit (16383²), and cost 2.2–2.4 GB of memory to decode. Training, evaluation, image-level data,
 * predict and classify all read images through this module, so the limit holds for all of them; a dataset
 * spec's `maxPixels` raises (or lowers) it.
 */
import { Effect } from "effect";
import sharp, { type SharpOptions } from "sharp";
import { errorText } from "../dsl/load_spec.ts";
import type { DatasetSpec } from "../dsl/dataset.ts";
import { ImageTooLarge, InvalidLabels, UnreadableFile } from "./errors.ts";

// libvips caches decoded images by file name; the loader reads each file once per epoch, so the cache
// only costs memory (and would hide a file that changed on disk).
sharp.cache(false);

/** An 8-bit RGB image, row-major, channels interleaved (HWC). */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

/** A single-channel mask of raw 8- or 16-bit values, row-major. */
export interface RawMask {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array | Uint16Array;
}

/** Abort on truncated or invalid pixel data rather than returning what could be decoded. */
const FAIL_ON = "warning" as const;

/**
 * The most pixels (width × height) an image may have for the loaders to decode it: 8192 × 8192, about
 * 0.2 GB as 8-bit RGB. Above any image size the datasets kappa targets use (COCO 640×480, Cityscapes
 * 2048×1024, a 48-megapixel phone photo), far below what exhausts a machine's memory.
 */
/**
 * Decodes two files at once and, when both fail, reports the first one's error: `Effect.all` with
 * concurrency would report whichever failed first in time, so an image and its mask that are both too
 * large would name either file from run to run.
 */
export const decodeBoth = <A, B, E1, E2>(
  first: Effect.Effect<A, E1>,
  second: Effect.Effect<B, E2>,
): Effect.Effect<readonly [A, B], E1 | E2> =>
  Effect.flatMap(
    Effect.all([Effect.result(first), Effect.result(second)], { concurrency: 2 }),
    ([a, b]): Effect.Effect<readonly [A, B], E1 | E2> =>
      a._tag === "Failure"
        ? Effect.fail(a.failure)
        : b._tag === "Failure"
        ? Effect.fail(b.failure)
        : Effect.succeed([a.success, b.success] as const),
  );

export const DEFAULT_MAX_PIXELS = 8192 * 8192;

/** Options of every decode: the pixel limit (default `DEFAULT_MAX_PIXELS`). */
export interface DecodeLimits {
  readonly maxPixels?: number;
}

/** A dataset spec's limit (`maxPixels`; procedural datasets have none: they decode no files). */
export const maxPixelsOf = (spec: DatasetSpec): number | undefined =>
  spec._tag === "Procedural" ? undefined : spec.maxPixels;

const thousands = (n: number) => n.toLocaleString("en-US");

/** The one-line refusal: the size, the limit, what decoding would cost, and how to raise the limit. */
export const tooLarge = (
  file: string,
  { width, height, channels }: { width: number; height: number; channels: number },
  maxPixels: number,
): ImageTooLarge => {
  const gb = (width * height * channels) / 1e9;
  const details = [
    ...(maxPixels === DEFAULT_MAX_PIXELS ? ["8192x8192, the default"] : []),
    ...(gb >= 0.01 ? [`decoding it would take over ${gb.toFixed(2)} GB`] : []),
  ];
  return new ImageTooLarge({
    file,
    message:
      `${width}x${height} pixels (${thousands(width * height)}) exceeds the loaders' limit of ${
        thousands(maxPixels)
      } pixels${details.length ? ` (${details.join("; ")})` : ""}; raise the limit with the dataset spec's ` +
      "maxPixels (data.dataset.maxPixels) or downscale the image",
  });
};

/** sharp's own header check, which `limitInputPixels` turns on (thrown before any pixel is decoded). */
const isPixelLimit = (e: unknown) => /exceeds pixel limit/i.test(errorText(e));

/**
 * Runs a sharp decode of `file` with the pixel limit on; when the header is over the limit, the error is
 * `ImageTooLarge` with the header's size (read again without the limit, still header only).
 */
const decodeWithin = <A>(
  file: string,
  maxPixels: number,
  decode: (options: SharpOptions) => Promise<A>,
): Effect.Effect<A, UnreadableFile | ImageTooLarge> =>
  Effect.tryPromise({
    try: async () => {
      try {
        return await decode({ failOn: FAIL_ON, limitInputPixels: maxPixels });
      } catch (e) {
        if (!isPixelLimit(e)) throw e;
        const m = await sharp(file, { limitInputPixels: false }).metadata();
        throw tooLarge(
          file,
          { width: m.width ?? 0, height: m.height ?? 0, channels: m.channels ?? 3 },
          maxPixels,
        );
      }
    },
    catch: (e) => (e instanceof ImageTooLarge ? e : unreadable(file)(e)),
  });

const unreadable = (file: string) => (e: unknown) =>
  new UnreadableFile({ file, message: describeSharpError(e) });

/** sharp's message, made into one line that says what is wrong with the file. */
const describeSharpError = (e: unknown): string => {
  const text = errorText(e);
  if (/missing|ENOENT|no such file/i.test(text)) return "file does not exist";
  if (/unsupported image format/i.test(text)) return "not a decodable image (corrupt or unsupported format)";
  // libvips reports a cut-off file either by its own message or as "warning treated as error (failOn)".
  if (/failOn/i.test(text)) return "truncated or corrupt image data";
  if (/premature end|truncated|Unexpected end/i.test(text)) {
    return `truncated or corrupt image data (${text})`;
  }
  return `cannot decode: ${text}`;
};

/** Width and height from the file header, without decoding pixels. */
export const readSize = (file: string): Effect.Effect<{ width: number; height: number }, UnreadableFile> =>
  Effect.tryPromise({
    // Header only: no pixel limit needed (the decode of the image itself is limited).
    try: () => sharp(file, { failOn: FAIL_ON, limitInputPixels: false }).metadata(),
    catch: unreadable(file),
  }).pipe(
    Effect.flatMap((m) =>
      m.width && m.height
        ? Effect.succeed({ width: m.width, height: m.height })
        : Effect.fail(new UnreadableFile({ file, message: "image header has no size" }))
    ),
  );

/**
 * Decodes a JPEG/PNG (any format libvips reads) to 8-bit RGB; grey images are expanded, alpha dropped.
 *
 * An embedded ICC profile is applied (colours converted to sRGB) unless `ignoreIcc`: ImageNet models
 * were trained on the stored values as PIL and TensorFlow read them, which differ by up to ~70 levels on
 * some photos with a profile.
 */
export const readRgb = (
  file: string,
  { ignoreIcc = false, maxPixels = DEFAULT_MAX_PIXELS }: { ignoreIcc?: boolean } & DecodeLimits = {},
): Effect.Effect<RgbImage, UnreadableFile | ImageTooLarge> =>
  decodeWithin(
    file,
    maxPixels,
    (options) =>
      sharp(file, { ...options, ignoreIcc }).removeAlpha().toColourspace("srgb").raw().toBuffer({
        resolveWithObject: true,
      }),
  ).pipe(
    Effect.flatMap(({ data, info }) =>
      info.channels === 3 && data.length === info.width * info.height * 3
        ? Effect.succeed({
          width: info.width,
          height: info.height,
          data: new Uint8Array(data.buffer, data.byteOffset, data.length),
        })
        : Effect.fail(
          new UnreadableFile({
            file,
            message: `decoded to ${info.channels} channels of ${
              data.length / (info.width * info.height * info.channels)
            } bytes; expected 8-bit RGB`,
          }),
        )
    ),
  );

/**
 * Decodes a single-channel 8- or 16-bit mask PNG to its raw values.
 *
 * Gotcha: RGB, grey+alpha and palette masks are `InvalidLabels` (they do not hold one class index per
 * pixel that libvips can return unchanged).
 */
export const readMask = (
  file: string,
  { maxPixels = DEFAULT_MAX_PIXELS }: DecodeLimits = {},
): Effect.Effect<RawMask, UnreadableFile | ImageTooLarge | InvalidLabels> =>
  Effect.gen(function* () {
    const meta = yield* decodeWithin(file, maxPixels, (options) => sharp(file, options).metadata());
    if (meta.isPalette) {
      return yield* Effect.fail(
        new InvalidLabels({
          file,
          message: "palette PNG mask: its class indices cannot be read unchanged; save it as 8-bit greyscale",
        }),
      );
    }
    if (meta.channels !== 1) {
      return yield* Effect.fail(
        new InvalidLabels({
          file,
          message: `mask has ${meta.channels} channels; expected 1 (one class index per pixel)`,
        }),
      );
    }
    const wide = meta.depth === "ushort";
    const { data, info } = yield* decodeWithin(file, maxPixels, (options) =>
      (wide
        ? sharp(file, options).toColourspace("grey16").raw({ depth: "ushort" })
        : sharp(file, options).toColourspace("b-w").raw()).toBuffer({ resolveWithObject: true }));
    if (info.channels !== 1) {
      return yield* Effect.fail(
        new InvalidLabels({ file, message: `mask decoded to ${info.channels} channels` }),
      );
    }
    const values = wide
      ? new Uint16Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length))
      : new Uint8Array(data.buffer, data.byteOffset, data.length);
    return { width: info.width, height: info.height, data: values };
  });

/**
 * Decodes a COCO panoptic PNG to segment ids (`R + 256·G + 256²·B`, 0 = void).
 */
export const readSegmentIds = (
  file: string,
  { maxPixels = DEFAULT_MAX_PIXELS }: DecodeLimits = {},
): Effect.Effect<
  { width: number; height: number; data: Int32Array },
  UnreadableFile | ImageTooLarge | InvalidLabels
> =>
  Effect.gen(function* () {
    const { data, info } = yield* decodeWithin(
      file,
      maxPixels,
      (options) => sharp(file, options).raw().toBuffer({ resolveWithObject: true }),
    );
    if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
      return yield* Effect.fail(
        new InvalidLabels({
          file,
          message: `panoptic PNG decodes to ${info.channels} channels of ${
            data.length / (info.width * info.height * info.channels)
          } bytes; expected 8-bit RGB`,
        }),
      );
    }
    const n = info.width * info.height;
    const ids = new Int32Array(n);
    for (let i = 0, j = 0; i < n; i++, j += 3) ids[i] = data[j] + 256 * data[j + 1] + 65536 * data[j + 2];
    return { width: info.width, height: info.height, data: ids };
  });
