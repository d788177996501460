import { Effect } from "effect";
import { assertEquals, assertThrowsMessage } from "./assert.ts";
import { decodeSafetensors, dtypeSize, encodeSafetensors, type Tensor } from "../io/safetensors.ts";

const FILE = "run/checkpoints/step-000001.safetensors";

/** 8-byte little-endian length, the header text, then the data bytes (all spelled out by the test). */
const fileBytes = (header: string, data: number[]) => {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
};

const decodeError = (bytes: Uint8Array) =>
  Effect.runSync(Effect.flip(decodeSafetensors(bytes, FILE))).message;

Deno.test("encode matches bytes written by hand from the spec", () => {
  // Header: metadata first, then tensors widest dtype first. 138 bytes of JSON padded with 6 spaces to
  // 144, a multiple of 8. Data: 1.0f = 00 00 80 3f, -2.0f = 00 00 00 c0, then the three bytes.
  const header = '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' +
    '"b":{"dtype":"U8","shape":[3],"data_offsets":[8,11]}}';
  assertEquals(header.length, 138);
  const expected = fileBytes(header + "      ", [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0, 1, 2, 3]);
  assertEquals(Array.from(expected.subarray(0, 8)), [144, 0, 0, 0, 0, 0, 0, 0]);
  const encoded = encodeSafetensors(
    {
      b: { dtype: "U8", shape: [3], data: Uint8Array.from([1, 2, 3]) },
      a: { dtype: "F32", shape: [2], data: Float32Array.from([1, -2]) },
    },
    { format: "pt" },
  );
  assertEquals(Array.from(encoded), Array.from(expected));
});

Deno.test("decode reads a hand-made file: unpadded header, any key order, no metadata", () => {
  const header = '{"b":{"dtype":"I32","shape":[],"data_offsets":[2,6]},' +
    '"a":{"dtype":"BOOL","shape":[1,2],"data_offsets":[0,2]}}';
  const { tensors, metadata } = Effect.runSync(
    decodeSafetensors(fileBytes(header, [1, 0, 0xff, 0xff, 0xff, 0xff]), FILE),
  );
  assertEquals(metadata, {});
  assertEquals(tensors.a.dtype, "BOOL");
  assertEquals(tensors.a.shape, [1, 2]);
  assertEquals(tensors.a.data, Uint8Array.from([1, 0]));
  assertEquals(tensors.b.shape, []);
  assertEquals(tensors.b.data, Int32Array.from([-1])); // scalar, read although it starts at an odd offset
});

Deno.test("round trip of every dtype, scalars, empty tensors, unicode names", () => {
  const tensors: Record<string, Tensor> = {
    "encoder.weight": { dtype: "F32", shape: [2, 3], data: Float32Array.from([0.5, -1, 2, 3.25, 1e-8, -0]) },
    "head.bias·α": { dtype: "F64", shape: [2], data: Float64Array.from([Math.PI, -Math.E]) },
    "optimizer.step": { dtype: "I64", shape: [], data: BigInt64Array.from([9007199254740993n]) },
    "ids": { dtype: "I32", shape: [3], data: Int32Array.from([-2147483648, 0, 2147483647]) },
    "odd": { dtype: "U8", shape: [5], data: Uint8Array.from([0, 1, 2, 254, 255]) },
    // Half precision as raw bits: 1.0, -2.0, 65504 (the largest), 2^-24 (the smallest subnormal).
    "half": { dtype: "F16", shape: [4], data: Uint16Array.from([0x3c00, 0xc000, 0x7bff, 0x0001]) },
    "mask": { dtype: "BOOL", shape: [3], data: Uint8Array.from([1, 0, 1]) },
    "empty": { dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
  };
  const metadata = { loader: '{"epoch":1,"index":7}', spec_hash: '"abc"' };
  const bytes = encodeSafetensors(tensors, metadata);
  const back = Effect.runSync(decodeSafetensors(bytes, FILE));
  assertEquals(back.metadata, metadata);
  assertEquals(Object.keys(back.tensors).sort(), Object.keys(tensors).sort());
  for (const [name, t] of Object.entries(tensors)) {
    assertEquals(back.tensors[name].dtype, t.dtype, name);
    assertEquals(back.tensors[name].shape, t.shape, name);
    assertEquals(back.tensors[name].data, t.data, name);
  }
  // The data starts on an 8-byte boundary and every tensor on a multiple of its element size.
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assertEquals(headerLength % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  for (const name of Object.keys(tensors)) {
    assertEquals(header[name].data_offsets[0] % dtypeSize(tensors[name].dtype), 0, name);
  }
  // Encoding does not depend on the record's insertion order.
  const reversed = Object.fromEntries(Object.entries(tensors).reverse());
  assertEquals(encodeSafetensors(reversed, metadata), bytes);
});

Deno.test("decode errors name the file and the tensor", () => {
  const entry = (name: string, dtype: string, shape: number[], begin: number, end: number) =>
    `"${name}":{"dtype":"${dtype}","shape":[${shape}],"data_offsets":[${begin},${end}]}`;
  const eight = [1, 2, 3, 4, 5, 6, 7, 8];
  const cases: [Uint8Array, string][] = [
    [new Uint8Array(4), `${FILE}: file is 4 bytes, too short for the 8-byte header length`],
    [
      fileBytes("{}", []).map((b, i) => (i === 0 ? 200 : b)),
      `${FILE}: header length 200 exceeds the 2 bytes after`,
    ],
    [fileBytes("{not json}", []), `${FILE}: header is not valid JSON`],
    [
      (() => {
        const b = fileBytes('{"\u00e9":1}', []);
        b[10] = 0xff; // break the UTF-8 of the header
        return b;
      })(),
      `${FILE}: header is not valid UTF-8`,
    ],
    [
      (() => {
        const b = new Uint8Array(16);
        new DataView(b.buffer).setBigUint64(0, 1n << 40n, true);
        return b;
      })(),
      `${FILE}: header length 1099511627776 exceeds the 100000000 limit`,
    ],
    [fileBytes("[1,2]", []), `${FILE}: header does not start with '{'`],
    [fileBytes(`{"__metadata__":{"epoch":3}}`, []), `${FILE}: __metadata__: metadata values must be strings`],
    [fileBytes(`{${entry("w", "BF16", [4], 0, 8)}}`, eight), `${FILE}: tensor "w": unsupported dtype "BF16"`],
    [
      fileBytes(`{${entry("w", "F32", [3], 0, 8)}}`, eight),
      `${FILE}: tensor "w": F32 shape [3] needs 12 bytes but data_offsets span 8`,
    ],
    [
      fileBytes(`{${entry("w", "U8", [16], 0, 16)}}`, eight),
      `${FILE}: tensor "w": data_offsets [0, 16] run past the 8-byte buffer`,
    ],
    [
      fileBytes(`{${entry("w", "U8", [0], 8, 0)}}`, eight),
      `${FILE}: tensor "w": data_offsets [8, 0] end before`,
    ],
    [
      fileBytes(`{${entry("a", "U8", [6], 0, 6)},${entry("b", "U8", [4], 4, 8)}}`, eight),
      `${FILE}: tensor "b": data overlaps tensor "a"`,
    ],
    [
      fileBytes(`{${entry("a", "U8", [2], 0, 2)},${entry("b", "U8", [4], 4, 8)}}`, eight),
      `${FILE}: tensor "b": data leaves a gap of 2 bytes before it`,
    ],
    [
      fileBytes(`{${entry("a", "U8", [6], 0, 6)}}`, eight),
      `${FILE}: 2 bytes at the end of the buffer belong to no tensor`,
    ],
    [
      fileBytes(`{"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,8]}}`, eight),
      `${FILE}: tensor "w": bad entry`,
    ],
  ];
  for (const [bytes, expected] of cases) {
    const message = decodeError(bytes);
    assertEquals(message.startsWith(expected), true, `got ${JSON.stringify(message)}, expected ${expected}`);
  }
});

Deno.test("encode rejects tensors it cannot represent, naming the tensor", () => {
  assertThrowsMessage(
    () => encodeSafetensors({ w: { dtype: "F32", shape: [2], data: Float64Array.from([1, 2]) } }),
    `tensor "w": dtype F32 needs a Float32Array, got Float64Array`,
  );
  assertThrowsMessage(
    () => encodeSafetensors({ w: { dtype: "F32", shape: [2, 2], data: new Float32Array(3) } }),
    `tensor "w": shape [2,2] has 4 elements but data has 3`,
  );
  assertThrowsMessage(
    () => encodeSafetensors({ m: { dtype: "BOOL", shape: [1], data: Uint8Array.from([2]) } }),
    `tensor "m": BOOL data must be 0 or 1`,
  );
  assertThrowsMessage(
    () => encodeSafetensors({ __metadata__: { dtype: "U8", shape: [0], data: new Uint8Array(0) } }),
    "reserved or empty tensor name",
  );
});
