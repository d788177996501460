/**
 * The safetensors file format, encoded and decoded in memory.
 *
 * Layout: an 8-byte little-endian unsigned header length N; N bytes of UTF-8 JSON
 *   { "<tensor>": { "dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end] }, ...,
 *     "__metadata__": { "<key>": "<string>" } }
 * padded with spaces so the data starts on an 8-byte boundary; then the tensors' bytes, little-endian,
 * with offsets relative to the start of that byte buffer. The buffer must be covered exactly (no gaps,
 * no overlaps, no trailing bytes), as the reference implementation requires.
 *
 * Tensors are written widest dtype first, then by name (the order the header lists them), so every
 * tensor starts at a multiple of its element size and readers can map it without copying; the output
 * bytes do not depend on the insertion order of the record.
 */
import { Data, Effect, Schema } from "effect";

export type Dtype = "F64" | "I64" | "F32" | "I32" | "F16" | "U8" | "BOOL";
/** F16 data is held as its raw IEEE half-precision bits (view them with `new Float16Array(data.buffer)`). */
export type TensorData = Float64Array | BigInt64Array | Float32Array | Int32Array | Uint16Array | Uint8Array;

export interface Tensor {
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

export interface Safetensors {
  readonly tensors: Readonly<Record<string, Tensor>>;
  readonly metadata: Readonly<Record<string, string>>;
}

/** Where a header places one tensor; offsets are relative to the start of the byte buffer. */
export interface TensorEntry {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsHeader {
  readonly headerLength: number;
  /** Offset of the byte buffer in the file: 8 + headerLength. */
  readonly dataStart: number;
  /** Entries in buffer order. */
  readonly entries: readonly TensorEntry[];
  readonly metadata: Readonly<Record<string, string>>;
}

export class SafetensorsError extends Data.TaggedError("SafetensorsError")<{
  readonly file: string;
  /** The tensor (or "__metadata__") at fault, when the problem is in one entry. */
  readonly tensor?: string;
  readonly message: string;
}> {}

const dtypeInfo = {
  F64: { size: 8, array: Float64Array },
  I64: { size: 8, array: BigInt64Array },
  F32: { size: 4, array: Float32Array },
  I32: { size: 4, array: Int32Array },
  F16: { size: 2, array: Uint16Array },
  U8: { size: 1, array: Uint8Array },
  BOOL: { size: 1, array: Uint8Array },
} as const;

const isDtype = (s: string): s is Dtype => Object.hasOwn(dtypeInfo, s);

/** Bytes per element of a dtype. */
export const dtypeSize = (dtype: Dtype): number => dtypeInfo[dtype].size;

const METADATA_KEY = "__metadata__";
/** "tensor "w": " for tensor entries, "__metadata__: " for the metadata entry, "" for the whole file. */
const entryLabel = (entry: string | undefined) =>
  entry === undefined ? "" : entry === METADATA_KEY ? `${METADATA_KEY}: ` : `tensor "${entry}": `;

/** The reference implementation refuses larger headers; so do we, before allocating anything. */
const MAX_HEADER_BYTES = 100_000_000;

// Tensor bytes are copied as they lie in memory; the format is little-endian.
const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const elementCount = (shape: readonly number[]) => shape.reduce((n, d) => n * d, 1);

const bytesOf = (data: TensorData) => new Uint8Array(data.buffer, data.byteOffset, data.byteLength);

const encodeError = (name: string, problem: string) =>
  new SafetensorsError({ file: "<encode>", tensor: name, message: `${entryLabel(name)}${problem}` });

/**
 * Serializes tensors (and optional string metadata) to safetensors bytes. Throws `SafetensorsError`
 * for inputs that cannot be represented (wrong array type for the dtype, length not matching shape,
 * BOOL values other than 0/1, reserved or empty names).
 */
export const encodeSafetensors = (
  tensors: Readonly<Record<string, Tensor>>,
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array => {
  if (!hostIsLittleEndian) throw encodeError("*", "big-endian hosts are not supported");
  const names = Object.keys(tensors);
  for (const name of names) {
    const { dtype, shape, data } = tensors[name];
    if (name === "" || name === METADATA_KEY) throw encodeError(name, "reserved or empty tensor name");
    if (!isDtype(dtype)) throw encodeError(name, `unsupported dtype ${JSON.stringify(dtype)}`);
    if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw encodeError(name, `shape ${JSON.stringify(shape)} must be non-negative integers`);
    }
    if (!(data instanceof dtypeInfo[dtype].array)) {
      throw encodeError(
        name,
        `dtype ${dtype} needs a ${dtypeInfo[dtype].array.name}, got ${data.constructor.name}`,
      );
    }
    if (data.length !== elementCount(shape)) {
      throw encodeError(
        name,
        `shape [${shape}] has ${elementCount(shape)} elements but data has ${data.length}`,
      );
    }
    if (dtype === "BOOL" && (data as Uint8Array).some((v) => v > 1)) {
      throw encodeError(name, "BOOL data must be 0 or 1");
    }
  }
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== "string") throw encodeError(METADATA_KEY, `value of "${key}" is not a string`);
  }
  const ordered = names.sort((a, b) =>
    dtypeSize(tensors[b].dtype) - dtypeSize(tensors[a].dtype) || (a < b ? -1 : a > b ? 1 : 0)
  );
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header[METADATA_KEY] = metadata;
  let offset = 0;
  for (const name of ordered) {
    const { dtype, shape, data } = tensors[name];
    header[name] = { dtype, shape: [...shape], data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const name of ordered) {
    const bytes = bytesOf(tensors[name].data);
    out.set(bytes, at);
    at += bytes.length;
  }
  return out;
};

const NonNegativeInt = Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0));
const HeaderObject = Schema.Record(Schema.String, Schema.Unknown);
const MetadataObject = Schema.Record(Schema.String, Schema.String);
const TensorInfo = Schema.Struct({
  dtype: Schema.String,
  shape: Schema.Array(NonNegativeInt),
  data_offsets: Schema.Tuple([NonNegativeInt, NonNegativeInt]),
});

const oneLine = (message: string) => message.replace(/\s*\n\s*/g, " ");

/**
 * Reads the length prefix: how many bytes of `bytes` the header occupies. Needs only the first 8
 * bytes and the file's total size, so callers can read a large file's header without its tensors.
 */
export const decodeHeaderLength = (
  prefix: Uint8Array,
  fileSize: number,
  file: string,
): Effect.Effect<number, SafetensorsError> => {
  if (prefix.length < 8 || fileSize < 8) {
    return Effect.fail(
      new SafetensorsError({
        file,
        message: `${file}: file is ${fileSize} bytes, too short for the 8-byte header length`,
      }),
    );
  }
  const length = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(MAX_HEADER_BYTES)) {
    return Effect.fail(
      new SafetensorsError({
        file,
        message: `${file}: header length ${length} exceeds the ${MAX_HEADER_BYTES} limit`,
      }),
    );
  }
  if (Number(length) > fileSize - 8) {
    return Effect.fail(
      new SafetensorsError({
        file,
        message: `${file}: header length ${length} exceeds the ${fileSize - 8} bytes after the length prefix`,
      }),
    );
  }
  return Effect.succeed(Number(length));
};

/**
 * Parses and validates the header. `bytes` holds at least the first 8 + N bytes of the file and
 * `fileSize` is the whole file's size, against which the data offsets are checked.
 */
export const decodeSafetensorsHeader = (
  bytes: Uint8Array,
  fileSize: number,
  file: string,
): Effect.Effect<SafetensorsHeader, SafetensorsError> =>
  Effect.gen(function* () {
    const fail = (message: string, tensor?: string) =>
      Effect.fail(
        new SafetensorsError({ file, tensor, message: `${file}: ${entryLabel(tensor)}${message}` }),
      );
    const headerLength = yield* decodeHeaderLength(bytes, fileSize, file);
    if (bytes.length < 8 + headerLength) return yield* fail(`only ${bytes.length} header bytes given`);
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
    } catch {
      return yield* fail("header is not valid UTF-8");
    }
    if (!text.startsWith("{")) return yield* fail("header does not start with '{'");
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      return yield* fail(`header is not valid JSON (${e instanceof Error ? e.message : e})`);
    }
    const object = Schema.decodeUnknownResult(HeaderObject)(json);
    if (object._tag === "Failure") return yield* fail("header is not a JSON object");
    const bufferLength = fileSize - 8 - headerLength;
    let metadata: Record<string, string> = {};
    const entries: TensorEntry[] = [];
    for (const [name, value] of Object.entries(object.success)) {
      if (name === METADATA_KEY) {
        const decoded = Schema.decodeUnknownResult(MetadataObject)(value);
        if (decoded._tag === "Failure") {
          return yield* fail(
            `metadata values must be strings: ${oneLine(decoded.failure.message)}`,
            METADATA_KEY,
          );
        }
        metadata = { ...decoded.success };
        continue;
      }
      const info = Schema.decodeUnknownResult(TensorInfo)(value);
      if (info._tag === "Failure") return yield* fail(`bad entry: ${oneLine(info.failure.message)}`, name);
      const { dtype, shape, data_offsets: [begin, end] } = info.success;
      if (!isDtype(dtype)) return yield* fail(`unsupported dtype ${JSON.stringify(dtype)}`, name);
      if (begin > end) return yield* fail(`data_offsets [${begin}, ${end}] end before they begin`, name);
      if (end > bufferLength) {
        return yield* fail(`data_offsets [${begin}, ${end}] run past the ${bufferLength}-byte buffer`, name);
      }
      const expected = elementCount(shape) * dtypeSize(dtype);
      if (end - begin !== expected) {
        return yield* fail(
          `${dtype} shape [${shape}] needs ${expected} bytes but data_offsets span ${end - begin}`,
          name,
        );
      }
      entries.push({ name, dtype, shape, begin, end });
    }
    entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
    let covered = 0;
    for (let i = 0; i < entries.length; i++) {
      const { name, begin } = entries[i];
      if (begin < covered) return yield* fail(`data overlaps tensor "${entries[i - 1].name}"`, name);
      if (begin > covered) {
        return yield* fail(`data leaves a gap of ${begin - covered} bytes before it`, name);
      }
      covered = entries[i].end;
    }
    if (covered !== bufferLength) {
      return yield* fail(`${bufferLength - covered} bytes at the end of the buffer belong to no tensor`);
    }
    return { headerLength, dataStart: 8 + headerLength, entries, metadata };
  });

/** Parses a whole safetensors file held in memory; `file` names it in errors. Tensors are copied. */
export const decodeSafetensors = (
  bytes: Uint8Array,
  file: string,
): Effect.Effect<Safetensors, SafetensorsError> =>
  Effect.gen(function* () {
    if (!hostIsLittleEndian) {
      return yield* Effect.fail(
        new SafetensorsError({ file, message: `${file}: big-endian hosts are not supported` }),
      );
    }
    const header = yield* decodeSafetensorsHeader(bytes, bytes.length, file);
    const tensors: Record<string, Tensor> = {};
    for (const { name, dtype, shape, begin, end } of header.entries) {
      // slice() copies into a fresh, aligned buffer whatever the source alignment.
      const copy = bytes.slice(header.dataStart + begin, header.dataStart + end);
      const data = new dtypeInfo[dtype].array(copy.buffer);
      tensors[name] = { dtype, shape, data };
    }
    return { tensors, metadata: header.metadata };
  });
