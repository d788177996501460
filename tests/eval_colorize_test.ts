import { Effect } from "effect";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assertEquals, assertThrowsMessage } from "./assert.ts";
import { colorizeMask, defaultPalette, overlay, readImageRgb, writePng } from "../eval/colorize.ts";

Deno.test("defaultPalette spreads the bits of c + 1 over the channels, most significant first", () => {
  const p = defaultPalette(10);
  // c + 1 = 1 -> red bit 7; 2 -> green bit 7; 3 -> red+green; 4 -> blue; 7 -> all three;
  // 8 = 0b001000 -> red bit 6 (64); 9 = 0b001001 -> red 128 + 64.
  assertEquals(p[0], [128, 0, 0]);
  assertEquals(p[1], [0, 128, 0]);
  assertEquals(p[2], [128, 128, 0]);
  assertEquals(p[3], [0, 0, 128]);
  assertEquals(p[6], [128, 128, 128]);
  assertEquals(p[7], [64, 0, 0]);
  assertEquals(p[8], [192, 0, 0]);
});

Deno.test("defaultPalette is distinct and never black for a large vocabulary", () => {
  const p = defaultPalette(3000);
  const keys = new Set(p.map(([r, g, b]) => (r << 16) | (g << 8) | b));
  assertEquals(keys.size, 3000);
  assertEquals(keys.has(0), false);
  assertEquals(defaultPalette(3000), p); // deterministic
});

Deno.test("colorizeMask paints classes and leaves ignore and unknown labels black", () => {
  const colors = [[10, 20, 30], [200, 100, 50]] as const;
  // 2x2: class 1, ignore (11), class 0, label 5 (no palette entry).
  const rgb = colorizeMask(Int32Array.from([1, 11, 0, 5]), 2, 2, colors, 11);
  assertEquals(Array.from(rgb), [200, 100, 50, 0, 0, 0, 10, 20, 30, 0, 0, 0]);
  assertThrowsMessage(
    () => colorizeMask(new Int32Array(3), 2, 2, colors, 11),
    "colorizeMask: labels: has 3 pixels, expected 2x2",
  );
});

Deno.test("overlay blends with rounding", () => {
  // 0.75 * 100 + 0.25 * 200 = 125;  0.75 * 0 + 0.25 * 255 = 63.75 -> 64;  0.75 * 255 + 0 = 191.25 -> 191.
  const out = overlay(Uint8Array.from([100, 0, 255]), Uint8Array.from([200, 255, 0]), 0.25);
  assertEquals(Array.from(out), [125, 64, 191]);
  assertThrowsMessage(
    () => overlay(new Uint8Array(3), new Uint8Array(6), 0.5),
    "overlay: maskRgb: has 6 bytes but imageRgb has 3",
  );
  assertThrowsMessage(
    () => overlay(new Uint8Array(3), new Uint8Array(3), 1.5),
    "overlay: alpha: must be in [0, 1], got 1.5",
  );
});

Deno.test("writePng round-trips pixels; bad sizes and paths name the file", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kappa-png-"));
  try {
    const file = join(dir, "mask.png");
    const rgb = Uint8Array.from([1, 2, 3, 250, 251, 252, 0, 0, 0, 128, 64, 32, 9, 8, 7, 255, 255, 255]);
    await Effect.runPromise(writePng(file, rgb, 3, 2));
    const back = await Effect.runPromise(readImageRgb(file));
    assertEquals([back.width, back.height], [3, 2]);
    assertEquals(Array.from(back.rgb), Array.from(rgb));

    const wrongSize = await Effect.runPromise(Effect.flip(writePng(file, rgb, 2, 2)));
    assertEquals(wrongSize.message, `${file}: 18 bytes do not make a 2x2 RGB image (12)`);
    const missingDir = join(dir, "nope", "x.png");
    const unwritable = await Effect.runPromise(Effect.flip(writePng(missingDir, rgb, 3, 2)));
    assertEquals(unwritable.message.startsWith(`${missingDir}: cannot write PNG`), true);
    const unreadable = await Effect.runPromise(Effect.flip(readImageRgb(join(dir, "absent.png"))));
    assertEquals(unreadable.message.startsWith(`${join(dir, "absent.png")}: cannot read image`), true);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
