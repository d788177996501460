/**
 * Whether the webgpu provider has an adapter here, for tests that need one. Without one, such tests are
 * skipped and say why; with KAPPA_EXPECT_WEBGPU=1 (set by CI after .ci/setup-vulkan) a missing device
 * fails them instead.
 */
import { Effect } from "effect";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { execute } from "../runtime/execute.ts";
import { graphStage, plan } from "../ir/plan.ts";

export const EXPECT_WEBGPU = "KAPPA_EXPECT_WEBGPU";

const probe = async (): Promise<string | undefined> => {
  const g = new Graph("probe");
  g.output("y", o.neg(o.input(g, "x", [1])));
  return await Effect.runPromise(
    Effect.scoped(execute(plan("probe", g, [graphStage(g)]), { provider: "webgpu" })).pipe(
      Effect.match({ onSuccess: () => undefined, onFailure: (e) => e.message }),
    ),
  );
};

/** Undefined when webgpu works; otherwise why not. Throws when CI expects the device. */
export const webgpuUnavailable = async (file: string): Promise<string | undefined> => {
  const reason = await probe();
  if (reason === undefined) return undefined;
  if (Deno.env.get(EXPECT_WEBGPU) === "1") {
    throw new Error(`${file}: ${EXPECT_WEBGPU}=1 but webgpu is unavailable: ${reason}`);
  }
  console.error(`${file}: webgpu tests skipped: ${reason}`);
  return reason;
};

/** A device test's name, carrying the reason when it is skipped (`deno test --quiet` hides console output). */
export const deviceTestName = (name: string, unavailable: string | undefined): string =>
  unavailable === undefined ? name : `${name} [skipped: ${unavailable}]`;

/**
 * The nodes ONNX Runtime ran on its CPU provider — node name → "OpType(input types → output types)" —
 * from the profiles written with `profilePrefix` (ONNX Runtime's own record of where each node ran).
 */
export const nodesOnCpu = (profilePrefix: string): Map<string, string> => {
  const slash = profilePrefix.lastIndexOf("/");
  const dir = profilePrefix.slice(0, slash), base = profilePrefix.slice(slash + 1);
  const nodes = new Map<string, string>();
  for (const entry of Deno.readDirSync(dir)) {
    if (!entry.name.startsWith(base) || !entry.name.endsWith(".json")) continue;
    const events = JSON.parse(Deno.readTextFileSync(`${dir}/${entry.name}`)) as {
      cat?: string;
      name?: string;
      args?: {
        provider?: string;
        op_name?: string;
        input_type_shape?: Record<string, unknown>[];
        output_type_shape?: Record<string, unknown>[];
      };
    }[];
    for (const e of events) {
      if (e.cat !== "Node" || e.args?.provider !== "CPUExecutionProvider") continue;
      const types = (xs?: Record<string, unknown>[]) => (xs ?? []).flatMap(Object.keys).join(",");
      const name = e.name!.replace(/_kernel_time$|_fence_(before|after)$/, "");
      nodes.set(
        name,
        `${e.args.op_name}(${types(e.args.input_type_shape)} → ${types(e.args.output_type_shape)})`,
      );
    }
  }
  return nodes;
};
