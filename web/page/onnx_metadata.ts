/**
 * An ONNX file's `metadata_props`, read straight from its protobuf bytes: onnxruntime-web does not expose
 * them, and they say whether a file is a kappa export and how to feed it (eval/export_size.ts writes them).
 *
 * ModelProto field 14 is `metadata_props`, repeated StringStringEntryProto { key = 1; value = 2 }. Only the
 * top-level fields are walked; the graph (field 7, the bulk of the file) is skipped by its length.
 */

/** Reads a varint at `at`; returns its value and the offset after it. */
const varint = (b: Uint8Array, at: number): [number, number] => {
  let value = 0, scale = 1;
  for (let i = 0; i < 10; i++) {
    if (at >= b.length) throw new Error("truncated varint");
    const byte = b[at++];
    value += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) return [value, at];
    scale *= 128;
  }
  throw new Error("varint longer than 10 bytes");
};

/** The fields of one message: field number → list of length-delimited payloads (other wire types skipped). */
const fields = (b: Uint8Array): Map<number, Uint8Array[]> => {
  const out = new Map<number, Uint8Array[]>();
  let at = 0;
  while (at < b.length) {
    const [key, next] = varint(b, at);
    at = next;
    const field = Math.floor(key / 8), wire = key & 7;
    if (wire === 0) at = varint(b, at)[1];
    else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else if (wire === 2) {
      const [length, start] = varint(b, at);
      if (start + length > b.length) throw new Error(`field ${field} runs past the end`);
      const list = out.get(field) ?? [];
      list.push(b.subarray(start, start + length));
      out.set(field, list);
      at = start + length;
    } else throw new Error(`wire type ${wire} is not protobuf's`);
  }
  return out;
};

/** `metadata_props` as key → value; throws when the bytes are not a protobuf message at all. */
export const onnxMetadata = (bytes: Uint8Array): Record<string, string> => {
  const decoder = new TextDecoder();
  const out: Record<string, string> = {};
  for (const entry of fields(bytes).get(14) ?? []) {
    const f = fields(entry);
    const key = f.get(1)?.[0], value = f.get(2)?.[0];
    if (key) out[decoder.decode(key)] = value ? decoder.decode(value) : "";
  }
  return out;
};
