/**
 * Fixture builders for the data tests: tiny PNG/JPEG files and whole datasets in a temp folder.
 *
 * Masks are written by a minimal PNG encoder here (not sharp), so a fixture holds exactly the bytes a test
 * means — 8-bit or 16-bit grey, palette, or RGB — including deliberately odd ones.
 */
import sharp from "sharp";
import { assert } from "./assert.ts";
import { crc32, deflateSync } from "node:zlib";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const chunk = (type: string, data: Uint8Array): Uint8Array => {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)) >>> 0);
  return out;
};

/** PNG color types used here. */
export type PngKind = "grey8" | "grey16" | "rgb8" | "palette8";

/**
 * Encodes a PNG; `values` holds one entry per pixel (grey, palette index) or three (RGB), row-major.
 */
export const encodePng = (
  width: number,
  height: number,
  kind: PngKind,
  values: ArrayLike<number>,
  palette?: ArrayLike<number>,
): Uint8Array => {
  const channels = kind === "rgb8" ? 3 : 1;
  const bytes = kind === "grey16" ? 2 : 1;
  const stride = width * channels * bytes;
  const rows = new Uint8Array(height * (1 + stride));
  for (let y = 0; y < height; y++) {
    for (let i = 0; i < width * channels; i++) {
      const v = values[y * width * channels + i];
      const o = y * (1 + stride) + 1 + i * bytes;
      if (bytes === 2) {
        rows[o] = v >> 8;
        rows[o + 1] = v & 255;
      } else rows[o] = v;
    }
  }
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  ihdr[8] = bytes * 8;
  ihdr[9] = kind === "rgb8" ? 2 : kind === "palette8" ? 3 : 0;
  const parts = [
    new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk("IHDR", ihdr),
    ...(palette ? [chunk("PLTE", Uint8Array.from(palette))] : []),
    chunk("IDAT", deflateSync(rows)),
    chunk("IEND", new Uint8Array()),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

/** Writes bytes, creating parent folders. */
export const put = async (file: string, data: Uint8Array | string): Promise<string> => {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, data);
  return file;
};

/** A fresh temp folder. */
export const tempDir = (prefix = "kappa-data-"): Promise<string> => mkdtemp(join(tmpdir(), prefix));

/** An RGB image whose pixel (x, y) is (x·16 + seed, y·16 + seed, 100 + seed), mod 256. */
export const gradient = (width: number, height: number, seed = 0): Uint8Array => {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 3;
      rgb[p] = (x * 16 + seed) & 255;
      rgb[p + 1] = (y * 16 + seed) & 255;
      rgb[p + 2] = (100 + seed) & 255;
    }
  }
  return rgb;
};

/** A JPEG of the given RGB pixels (lossy: for decoding tests, not exact values). */
export const encodeJpeg = async (width: number, height: number, rgb: Uint8Array): Promise<Uint8Array> =>
  new Uint8Array(await sharp(rgb, { raw: { width, height, channels: 3 } }).jpeg({ quality: 95 }).toBuffer());

/** A small folder dataset's files: image stem → [RGB PNG pixels, mask values]. */
export interface FolderFixture {
  readonly width: number;
  readonly height: number;
  readonly samples: Readonly<Record<string, readonly number[]>>;
}

/**
 * Writes a folder dataset with lossless PNG images (the gradient, seeded by sample order) and 8-bit masks,
 * plus `classes.json` with `names` and `ignore`; returns the root.
 */
export const writeFolderDataset = async (
  root: string,
  split: string,
  fixture: FolderFixture,
  names: readonly string[] = ["a", "b", "c"],
  ignore = 255,
): Promise<string> => {
  await put(
    join(root, "classes.json"),
    JSON.stringify({
      ignore_index: ignore,
      classes: names.map((name, id) => ({ id, name, color: [id * 40, 0, 0] })),
    }),
  );
  let seed = 0;
  for (const [stem, mask] of Object.entries(fixture.samples)) {
    const rgb = gradient(fixture.width, fixture.height, seed++);
    await put(
      join(root, "images", split, `${stem}.png`),
      encodePng(fixture.width, fixture.height, "rgb8", rgb),
    );
    await put(
      join(root, "annotations", split, `${stem}.png`),
      encodePng(fixture.width, fixture.height, "grey8", mask),
    );
  }
  return root;
};

/**
 * `assert` from tests/assert.ts, typed as a plain function: as an `asserts` arrow function without an
 * explicit annotation it cannot be called (TS2775), so the data tests use this alias.
 */
export const check: (cond: unknown, message?: string) => void = assert;

/** Runs `body` with a fresh temp folder (named `prefix…`) and removes the folder afterwards. */
export const withTempDir = async <A>(body: (dir: string) => Promise<A>, prefix?: string): Promise<A> => {
  const dir = await tempDir(prefix);
  try {
    return await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};
