/**
 * The data layer's errors: tagged values that always name the offending file and say what is wrong.
 *
 * Every error carries `file` and a one-line `message`, so a caller can print `file: message` for any of
 * them (see `problemLine`). `BadFiles` gathers the per-file problems of a whole split.
 */
import { Data } from "effect";
import { InvalidConfig } from "../dsl/decode.ts";

/** A dataset spec, pipeline spec, class table or option that fails validation (a spec error). */
export { InvalidConfig };

/** A file that cannot be read or decoded: missing, corrupt, truncated or in an unsupported format. */
export class UnreadableFile extends Data.TaggedError("UnreadableFile")<{ file: string; message: string }> {}

/**
 * An image (or mask) with more pixels than the loaders decode (`maxPixels`, see data/decode.ts), found from
 * its header before any pixel is decoded.
 */
export class ImageTooLarge extends Data.TaggedError("ImageTooLarge")<{ file: string; message: string }> {}

/** An image without its annotation file. */
export class MissingMask extends Data.TaggedError("MissingMask")<{ file: string; message: string }> {}

/**
 * Labels that contradict the image or the class table: wrong mask size, a value outside the table,
 * an unknown category id, a panoptic segment id without an entry.
 */
export class InvalidLabels extends Data.TaggedError("InvalidLabels")<{ file: string; message: string }> {}

/** A split with no images at all. */
export class EmptySplit extends Data.TaggedError("EmptySplit")<{ file: string; message: string }> {}

/** One bad file found while reading a split. */
export interface Problem {
  readonly file: string;
  readonly message: string;
}

/** A split in which one or more files are bad; `problems` holds one entry per problem. */
export class BadFiles extends Data.TaggedError("BadFiles")<{
  file: string;
  message: string;
  problems: readonly Problem[];
}> {}

/** Any error the data layer produces. */
export type DataError =
  | InvalidConfig
  | UnreadableFile
  | ImageTooLarge
  | MissingMask
  | InvalidLabels
  | EmptySplit
  | BadFiles;

/** The error's tag names a problem in one file (as opposed to a whole-split summary). */
export type FileError = Exclude<DataError, BadFiles>;

/** `file: message`, the one-line form used by the CLI and by tests. */
export const problemLine = (p: Problem): string => `${p.file}: ${p.message}`;
