import { Data } from "effect";

/**
 * A metric was fed inputs that cannot be evaluated (mismatched lengths, unknown segment ids...).
 * `field` names the offending argument so the caller can tell which of its arrays is wrong. The
 * accumulators are synchronous and throw this (a tagged Error); Effect callers catch it with
 * `Effect.try` and keep it typed.
 */
export class MetricsInputError extends Data.TaggedError("MetricsInputError")<{
  readonly metric: string;
  readonly field: string;
  readonly message: string;
}> {}

export const metricsInputError = (metric: string, field: string, problem: string): MetricsInputError =>
  new MetricsInputError({ metric, field, message: `${metric}: ${field}: ${problem}` });
