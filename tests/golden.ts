/**
 * Golden files: a renderer's output compared byte for byte with a checked-in fixture. After an intended
 * change of the output, `UPDATE_GOLDEN=1 deno test -A tests/<file>_test.ts` rewrites the fixtures; then
 * read their diff.
 */
import { assertEquals } from "./assert.ts";

const UPDATE = Deno.env.get("UPDATE_GOLDEN") === "1";

/** A checker of the fixtures in `fixtures` (a folder URL): `golden(name, actual)`. */
export const goldenIn = (fixtures: URL) => async (name: string, actual: string): Promise<void> => {
  const file = new URL(name, fixtures);
  if (UPDATE) {
    await Deno.mkdir(fixtures, { recursive: true });
    await Deno.writeTextFile(file, actual);
  }
  assertEquals(actual, await Deno.readTextFile(file), `${name} differs from its golden output`);
};
