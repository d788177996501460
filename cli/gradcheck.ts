/** `deno task gradcheck`: every differentiable primitive's VJP against central finite differences. */
import { Console, Data, Effect } from "effect";
import { Command } from "effect/cli";
import { formatReport, gradcheck } from "../runtime/gradcheck.ts";

class GradcheckFailed extends Data.TaggedError("GradcheckFailed")<{ readonly failed: number }> {
  override get message(): string {
    return `gradcheck: ${this.failed} ops failed`;
  }
}

export const gradcheckCommand = Command.make("gradcheck", {}, () =>
  Effect.gen(function* () {
    const report = yield* gradcheck();
    yield* Console.log(formatReport(report));
    if (report.failedOps.length) return yield* new GradcheckFailed({ failed: report.failedOps.length });
  })).pipe(Command.withDescription("Check every primitive's gradient against finite differences."));
