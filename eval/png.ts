/** PNG output (and image input for the eval step's examples) through sharp. */
import { Data, Effect } from "effect";
import sharp from "sharp";

export class ImageFileError extends Data.TaggedError("ImageFileError")<{
  readonly file: string;
  readonly message: string;
}> {}

export interface RgbImage {
  readonly rgb: Uint8Array;
  readonly width: number;
  readonly height: number;
}

const describe = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Writes packed RGB pixels as a PNG. Not atomic: examples are cheap to regenerate. */
export const writePng = (
  file: string,
  rgb: Uint8Array,
  width: number,
  height: number,
): Effect.Effect<void, ImageFileError> => {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    return Effect.fail(new ImageFileError({ file, message: `${file}: bad size ${width}x${height}` }));
  }
  if (rgb.length !== width * height * 3) {
    return Effect.fail(
      new ImageFileError({
        file,
        message: `${file}: ${rgb.length} bytes do not make a ${width}x${height} RGB image (${
          width * height * 3
        })`,
      }),
    );
  }
  return Effect.tryPromise({
    try: () => sharp(rgb, { raw: { width, height, channels: 3 } }).png().toFile(file),
    catch: (e) => new ImageFileError({ file, message: `${file}: cannot write PNG (${describe(e)})` }),
  }).pipe(Effect.asVoid);
};

/** Decodes any image sharp reads (PNG, JPEG, ...) to packed RGB, dropping alpha. */
export const readImageRgb = (file: string): Effect.Effect<RgbImage, ImageFileError> =>
  Effect.tryPromise({
    try: async () => {
      const { data, info } = await sharp(file).removeAlpha().toColourspace("srgb").raw().toBuffer({
        resolveWithObject: true,
      });
      if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
      return {
        rgb: new Uint8Array(data.buffer, data.byteOffset, data.length),
        width: info.width,
        height: info.height,
      };
    },
    catch: (e) => new ImageFileError({ file, message: `${file}: cannot read image (${describe(e)})` }),
  });
