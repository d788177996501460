/**
 * Canonical JSON and content hashes: two equal specs — whatever their key order or how they were
 * built — print the same text and hash to the same value.
 */
import { createHash } from "node:crypto";

const sortKeys = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === "object") {
    return Object.fromEntries(
      Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
};

/** JSON with object keys sorted at every level, indented by two spaces. */
export const canonicalJson = (value: unknown): string => JSON.stringify(sortKeys(value), null, 2);

/** SHA-256 (hex) of the canonical JSON. */
export const specHash = (value: unknown): string =>
  createHash("sha256").update(JSON.stringify(sortKeys(value))).digest("hex");
