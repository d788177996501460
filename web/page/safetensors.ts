/**
 * safetensors in the page: reading the state and shard the server sends, writing the checkpoint the page
 * downloads. The same layout as kappa's io/safetensors.ts (an 8-byte little-endian header length, a JSON
 * header padded with spaces to 8 bytes, tensors largest element first then by name), so a checkpoint
 * written here reads back with `loadCheckpoint` like one written by `deno task train`.
 */

export type Dtype = "F32" | "I32" | "I64" | "F64" | "U8";
export type TensorData = Float32Array | Int32Array | BigInt64Array | Float64Array | Uint8Array;

export interface Tensor {
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

export interface Safetensors {
  readonly tensors: Map<string, Tensor>;
  readonly metadata: Record<string, string>;
}

const ARRAYS = {
  F32: Float32Array,
  I32: Int32Array,
  I64: BigInt64Array,
  F64: Float64Array,
  U8: Uint8Array,
} as const;

const METADATA = "__metadata__";

/** Decodes safetensors bytes; throws an Error naming `file` and what is wrong. */
export const decodeSafetensors = (bytes: Uint8Array, file: string): Safetensors => {
  if (bytes.length < 8) throw new Error(`${file}: not a safetensors file (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  if (8 + headerLength > bytes.length) throw new Error(`${file}: header runs past the end of the file`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  } catch (e) {
    throw new Error(`${file}: header is not JSON (${(e as Error).message})`);
  }
  const tensors = new Map<string, Tensor>();
  const start = 8 + headerLength;
  for (const [name, entry] of Object.entries(header)) {
    if (name === METADATA) continue;
    const { dtype, shape, data_offsets: [from, to] } = entry as {
      dtype: Dtype;
      shape: number[];
      data_offsets: [number, number];
    };
    const ArrayType = ARRAYS[dtype];
    if (!ArrayType) {
      throw new Error(`${file}: tensor "${name}" has dtype ${dtype}, which the page does not read`);
    }
    if (start + to > bytes.length) throw new Error(`${file}: tensor "${name}" runs past the end of the file`);
    // Copy into an aligned buffer: the tensor's offset in the file need not be a multiple of its size.
    const copy = bytes.slice(start + from, start + to);
    tensors.set(name, {
      dtype,
      shape,
      data: new ArrayType(copy.buffer, 0, (to - from) / ArrayType.BYTES_PER_ELEMENT),
    });
  }
  return { tensors, metadata: (header[METADATA] as Record<string, string>) ?? {} };
};

/** Encodes tensors and string metadata as safetensors bytes (kappa's tensor order). */
export const encodeSafetensors = (
  tensors: ReadonlyMap<string, Tensor>,
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array => {
  const size = (t: Tensor) => ARRAYS[t.dtype].BYTES_PER_ELEMENT;
  const names = [...tensors.keys()].sort((a, b) =>
    size(tensors.get(b)!) - size(tensors.get(a)!) || (a < b ? -1 : a > b ? 1 : 0)
  );
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header[METADATA] = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    const count = t.shape.reduce((n, d) => n * d, 1);
    if (t.data.length !== count) {
      throw new Error(
        `tensor "${name}": shape [${t.shape}] has ${count} elements, the data ${t.data.length}`,
      );
    }
    header[name] = {
      dtype: t.dtype,
      shape: [...t.shape],
      data_offsets: [offset, offset + t.data.byteLength],
    };
    offset += t.data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const name of names) {
    const d = tensors.get(name)!.data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
  }
  return out;
};
