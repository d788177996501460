/**
 * Decoding image and mask files with sharp (libvips) into plain pixel arrays.
 *
 * Gotchas: sharp converts single-band images to sRGB on raw output unless told otherwise, so masks are
 * read through an explicit grey colourspace; palette PNG masks are rejected because libvips expands the
 * palette to colors and the class indices are lost; truncated or corrupt data is an error (`failOn`),
 * never a partially grey image.
 */
import { Effect } from "effect";
import sharp from "sharp";
import { errorText } from "../dsl/load_spec.ts";
import { InvalidLabels, UnreadableFile } from "./errors.ts";

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
    try: () => sharp(file, { failOn: FAIL_ON }).metadata(),
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
  { ignoreIcc = false }: { ignoreIcc?: boolean } = {},
): Effect.Effect<RgbImage, UnreadableFile> =>
  Effect.tryPromise({
    try: () =>
      sharp(file, { failOn: FAIL_ON, ignoreIcc }).removeAlpha().toColourspace("srgb").raw().toBuffer({
        resolveWithObject: true,
      }),
    catch: unreadable(file),
  }).pipe(Effect.flatMap(({ data, info }) =>
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
  ));

/**
 * Decodes a single-channel 8- or 16-bit mask PNG to its raw values.
 *
 * Gotcha: RGB, grey+alpha and palette masks are `InvalidLabels` (they do not hold one class index per
 * pixel that libvips can return unchanged).
 */
export const readMask = (file: string): Effect.Effect<RawMask, UnreadableFile | InvalidLabels> =>
  Effect.gen(function* () {
    const meta = yield* Effect.tryPromise({
      try: () => sharp(file, { failOn: FAIL_ON }).metadata(),
      catch: unreadable(file),
    });
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
    const { data, info } = yield* Effect.tryPromise({
      try: () =>
        (wide
          ? sharp(file, { failOn: FAIL_ON }).toColourspace("grey16").raw({ depth: "ushort" })
          : sharp(file, { failOn: FAIL_ON }).toColourspace("b-w").raw()).toBuffer({
            resolveWithObject: true,
          }),
      catch: unreadable(file),
    });
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
): Effect.Effect<{ width: number; height: number; data: Int32Array }, UnreadableFile | InvalidLabels> =>
  Effect.gen(function* () {
    const { data, info } = yield* Effect.tryPromise({
      try: () => sharp(file, { failOn: FAIL_ON }).raw().toBuffer({ resolveWithObject: true }),
      catch: unreadable(file),
    });
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
