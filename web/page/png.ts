/**
 * The class map as a PNG the page downloads: 8-bit grayscale whose value is the class id (16-bit for
 * more than 256 classes), so any image library reads the ids back exactly. Deflate comes from the
 * browser's CompressionStream (zlib format, what PNG's IDAT holds).
 */

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

const crc32 = (bytes: Uint8Array): number => {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
};

const chunk = (type: string, data: Uint8Array): Uint8Array => {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  const typeAndData = out.subarray(4, 8 + data.length);
  typeAndData.set(new TextEncoder().encode(type), 0);
  typeAndData.set(data, 4);
  view.setUint32(8 + data.length, crc32(typeAndData));
  return out;
};

const deflate = async (bytes: Uint8Array): Promise<Uint8Array> => {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
};

/** A grayscale PNG of `classes` (row-major, width × height): 8-bit ids, or 16-bit when `classCount` > 256. */
export const classMapPng = async (
  classes: Int32Array,
  width: number,
  height: number,
  classCount: number,
): Promise<Uint8Array> => {
  const depth = classCount > 256 ? 16 : 8;
  const bytesPerPixel = depth / 8;
  const rowLength = 1 + width * bytesPerPixel;
  const raw = new Uint8Array(rowLength * height);
  for (let y = 0; y < height; y++) {
    const row = y * rowLength; // filter byte 0 (none), then the row
    for (let x = 0; x < width; x++) {
      const v = classes[y * width + x];
      if (depth === 8) raw[row + 1 + x] = v;
      else {
        raw[row + 1 + 2 * x] = v >> 8;
        raw[row + 2 + 2 * x] = v & 0xff;
      }
    }
  }
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header[8] = depth;
  header[9] = 0; // grayscale
  const parts = [
    Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a),
    chunk("IHDR", header),
    chunk("IDAT", await deflate(raw)),
    chunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
