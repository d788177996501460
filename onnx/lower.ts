/**
 * Lowering: an IR graph (or the part of it that some named outputs need) to an ONNX model (opset 21).
 *
 * Encoding uses the official `onnx.proto` schema as compiled by protobufjs (npm `onnx-proto`, generated
 * from ONNX v1.10.2's onnx.proto; the IR version field is just a number, so we declare IR 10 for opset 21).
 * Each primitive's rule emits its ONNX nodes; this module only does the bookkeeping: which nodes are live,
 * value names, initializers, graph inputs and outputs, and the dynamic batch dimension for exports.
 */
import type * as P from "onnx-proto";
import onnxProto from "onnx-proto";
import type { DType, HostArray, Shape } from "../ir/dtype.ts";
import { hostArray, ONNX_DTYPE } from "../ir/dtype.ts";
import { type Graph, GraphError, type Tensor } from "../ir/graph.ts";
import { liveNodes, outputTensors, type ValueSpec } from "../ir/live.ts";
import {
  type Attr,
  type LowerContext,
  type LowerTarget,
  type Op,
  type Prim,
  type Rule,
  RULES,
} from "../ir/primitives.ts";

const { onnx } = onnxProto as unknown as typeof P;

export const OPSET = 21;
export const IR_VERSION = 10;

export interface LowerOptions {
  /** Graph outputs to compute (default: all). */
  readonly outputs?: readonly string[];
  /** Variables embedded as initializers instead of fed as inputs (export), by variable name. */
  readonly initializers?: ReadonlyMap<string, HostArray>;
  /** Give the leading dimension of inputs and outputs that have the traced batch size a symbolic name. */
  readonly dynamicBatch?: { readonly batch: number; readonly name?: string };
  readonly name?: string;
  readonly docString?: string;
  /** The model's `metadata_props` (key → value), readable by any ONNX Runtime. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** The provider to lower for (default `cpu`: plain ONNX, what exports use). */
  readonly target?: LowerTarget;
  /**
   * ONNX Runtime's NCHWc block size on this machine (`runtime/nchwc.ts`): with it, depthwise convolutions
   * use its NCHWc kernels (`com.microsoft.nchwc` ops, which only an x86 ONNX Runtime CPU EP runs, and
   * which depend on the block size it picked for this CPU). For graphs run here; never for exports.
   */
  readonly nchwcBlock?: number;
}

/**
 * Ops that ONNX Runtime's WebGPU provider runs on the CPU when they carry int64 values (seen in its
 * profile: Equal, Where, GatherElements, ScatterElements, Expand and Reshape of label and class-index
 * maps). For `webgpu` their int64 operands are cast to a type it takes and their results cast back, so
 * that the whole step stays on the device: indices to int32, values to int32 — or to float32 for
 * GatherElements, which has no int32 kernel there (exact: class ids, ranks and positions are < 2^24),
 * through int32, since its Cast between int64 and float32 runs on the CPU too.
 */
const NARROWED_ON_WEBGPU: ReadonlyMap<Op, DType> = new Map<Op, DType>([
  ["equal", "int32"],
  ["less", "int32"],
  ["greater", "int32"],
  ["lessOrEqual", "int32"],
  ["greaterOrEqual", "int32"],
  ["where", "int32"],
  ["gather", "int32"],
  ["gatherElements", "float32"],
  ["scatterElements", "int32"],
  ["expand", "int32"],
  ["reshape", "int32"],
]);
export interface Lowered {
  readonly bytes: Uint8Array;
  /** Graph inputs in declaration order: feeds and (non-embedded) variables. */
  readonly inputs: readonly ValueSpec[];
  readonly outputs: readonly ValueSpec[];
  /** Names of the variables among the inputs. */
  readonly variables: readonly string[];
}

const ruleOf = (prim: Prim) => RULES[prim.op] as unknown as Rule<Prim>;

const attribute = (name: string, a: Attr): P.onnx.IAttributeProto => {
  const T = onnx.AttributeProto.AttributeType;
  if ("int" in a) return { name, type: T.INT, i: a.int };
  if ("float" in a) return { name, type: T.FLOAT, f: a.float };
  if ("ints" in a) return { name, type: T.INTS, ints: [...a.ints] };
  if ("floats" in a) return { name, type: T.FLOATS, floats: [...a.floats] };
  return { name, type: T.STRING, s: new TextEncoder().encode(a.string) };
};

const tensorProto = (name: string, dtype: DType, shape: Shape, data: HostArray): P.onnx.ITensorProto => ({
  name,
  dims: [...shape],
  dataType: ONNX_DTYPE[dtype],
  rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
});

const valueInfo = (v: ValueSpec, batchName?: string, batch?: number): P.onnx.IValueInfoProto => ({
  name: v.name,
  type: {
    tensorType: {
      elemType: ONNX_DTYPE[v.dtype],
      shape: {
        dim: v.shape.map((
          d,
          i,
        ) => (i === 0 && batchName && d === batch ? { dimParam: batchName } : { dimValue: d })),
      },
    },
  },
});

/** Lowers the part of `g` that computes the requested outputs to a serialized ONNX model. */
export const toOnnx = (g: Graph, options: LowerOptions = {}): Lowered => {
  const requested = outputTensors(g, options.outputs);
  const outputNames = requested.map((r) => r.name);
  const roots = requested.map((r) => r.tensor);
  const nodes = liveNodes(g, roots);
  const nodeProtos: P.onnx.INodeProto[] = [];
  const initializers: P.onnx.ITensorProto[] = [];
  const inputs: ValueSpec[] = [];
  const variables: string[] = [];
  const names = new Map<number, string>(); // tensor id → ONNX value name
  let counter = 0;
  const fresh = (hint: string) => `${hint}_${counter++}`;
  // ONNX node names carry the IR node's scope, marked when autodiff or the optimizer added it, e.g.
  // `backward:model.backbone.blocks.3.attn/MatMul_812`, so that ONNX Runtime's profile (which names
  // kernels by node) attributes time to layers and to the forward or backward pass.
  let label = "";

  // Which outputs of each live node are consumed (rules may skip optional outputs nobody uses).
  const used = new Set<number>(roots.map((t) => t.id));
  for (const n of nodes) for (const t of ruleOf(n.prim).inputs(n.prim)) used.add(t.id);

  // A graph output produced by an ordinary node takes the output's name directly.
  const outputNameOf = new Map<number, string>();
  for (const [i, t] of roots.entries()) {
    const prim = g.nodes[t.node].prim.op;
    if (!outputNameOf.has(t.id) && prim !== "input" && prim !== "variable" && prim !== "constant") {
      outputNameOf.set(t.id, outputNames[i]);
    }
  }

  const dyn = options.dynamicBatch;
  let batchDim: string | undefined;
  const batchInput = () => {
    const feed = inputs.find((v) => v.shape.length > 0 && v.shape[0] === dyn!.batch);
    if (!feed) {
      throw new GraphError({ path: "", message: `dynamic batch: no input has batch size ${dyn!.batch}` });
    }
    return feed.name;
  };
  const addConstant = (values: ArrayLike<number>, dtype: DType, shape: Shape) => {
    const name = fresh("const");
    initializers.push(tensorProto(name, dtype, shape, hostArray(dtype, values)));
    return name;
  };

  const target = options.target ?? "cpu";
  const domains = new Set<string>();
  const ctxBase = {
    target,
    ...(target === "cpu" && options.nchwcBlock ? { nchwcBlock: options.nchwcBlock } : {}),
    fresh,
    constant: addConstant,
    int64: (values: readonly number[], shape?: Shape) =>
      addConstant(values, "int64", shape ?? [values.length]),
    scalar: (value: number, dtype: DType) => addConstant([value], dtype, []),
    node: (
      opType: string,
      ins: readonly string[],
      outs: readonly string[],
      attrs: Record<string, Attr> = {},
      domain?: string,
    ) => {
      if (domain) domains.add(domain);
      nodeProtos.push({
        opType,
        ...(domain ? { domain } : {}),
        input: [...ins],
        output: [...outs],
        name: label ? `${label}/${fresh(opType)}` : fresh(opType),
        attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      });
    },
    shape: (dims: Shape): string => {
      if (!dyn || dims.length === 0 || dims[0] !== dyn.batch) {
        return addConstant(dims, "int64", [dims.length]);
      }
      if (!batchDim) {
        batchDim = fresh("batch");
        nodeProtos.push({
          opType: "Shape",
          input: [batchInput()],
          output: [batchDim],
          name: fresh("Shape"),
          attribute: [attribute("start", { int: 0 }), attribute("end", { int: 1 })],
        });
      }
      const out = fresh("shape");
      ctxBase.node("Concat", [batchDim, addConstant(dims.slice(1), "int64", [dims.length - 1])], [out], {
        axis: { int: 0 },
      });
      return out;
    },
  };

  for (const n of nodes) {
    const { prim } = n;
    label = `${n.backward ? "backward:" : ""}${n.scope}`;
    if (prim.op === "input" || prim.op === "variable") {
      const [t] = n.outputs;
      names.set(t.id, prim.name);
      const embedded = prim.op === "variable" ? options.initializers?.get(prim.name) : undefined;
      if (embedded) initializers.push(tensorProto(prim.name, prim.dtype, prim.shape, embedded));
      else {
        inputs.push({ name: prim.name, dtype: prim.dtype, shape: prim.shape });
        if (prim.op === "variable") variables.push(prim.name);
      }
      continue;
    }
    if (prim.op === "constant") {
      const name = fresh("const");
      initializers.push(tensorProto(name, prim.dtype, prim.shape, prim.value));
      names.set(n.outputs[0].id, name);
      continue;
    }
    const out = n.outputs.map((t) => {
      const name = outputNameOf.get(t.id) ?? `t${t.id}`;
      names.set(t.id, name);
      return name;
    });
    const operands = ruleOf(prim).inputs(prim);
    const valueType = target === "webgpu" ? NARROWED_ON_WEBGPU.get(prim.op) : undefined;
    const narrowed = valueType !== undefined && [...operands, ...n.outputs].some((t) => t.dtype === "int64");
    const indices = "indices" in prim ? prim.indices : undefined;
    // Narrowing: copies of int64 operands in the types the provider takes, results cast back to int64.
    const narrowName = new Map<number, string>();
    if (narrowed) {
      for (const t of operands) {
        if (t.dtype !== "int64" || narrowName.has(t.id)) continue;
        const to = t === indices ? "int32" : valueType;
        const int32 = fresh("int32");
        ctxBase.node("Cast", [names.get(t.id)!], [int32], { to: { int: ONNX_DTYPE.int32 } });
        if (to === "int32") narrowName.set(t.id, int32);
        else {
          const name = fresh(to);
          ctxBase.node("Cast", [int32], [name], { to: { int: ONNX_DTYPE[to] } });
          narrowName.set(t.id, name);
        }
      }
    }
    const narrowOut = out.map((
      name,
      i,
    ) => (narrowed && n.outputs[i].dtype === "int64" ? fresh(valueType) : name));
    const ctx: LowerContext = {
      ...ctxBase,
      out: narrowOut,
      used: n.outputs.map((t) => used.has(t.id)),
      name: (t: Tensor) => {
        const name = narrowName.get(t.id) ?? names.get(t.id);
        if (name === undefined) throw new Error(`internal: operand t${t.id} of ${prim.op} was not lowered`);
        return name;
      },
    };
    ruleOf(prim).lower(prim, ctx);
    for (const [i, name] of narrowOut.entries()) {
      if (name === out[i]) continue;
      let int32 = name;
      if (valueType !== "int32") {
        int32 = fresh("int32");
        ctxBase.node("Cast", [name], [int32], { to: { int: ONNX_DTYPE.int32 } });
      }
      ctxBase.node("Cast", [int32], [out[i]], { to: { int: ONNX_DTYPE.int64 } });
    }
  }

  // Outputs that are inputs, variables, constants, or repeated need an Identity to carry their own name.
  label = "";
  const outputs: ValueSpec[] = roots.map((t, i) => {
    const name = outputNames[i];
    if (names.get(t.id) !== name) ctxBase.node("Identity", [names.get(t.id)!], [name]);
    return { name, dtype: t.dtype, shape: t.shape };
  });

  const model: P.onnx.IModelProto = {
    irVersion: IR_VERSION,
    // ONNX Runtime's contrib operator sets are at version 1.
    opsetImport: [{ domain: "", version: OPSET }, ...[...domains].map((domain) => ({ domain, version: 1 }))],
    producerName: "kappa",
    docString: options.docString,
    metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: options.name ?? g.name,
      node: nodeProtos,
      initializer: initializers,
      input: inputs.map((v) => valueInfo(v, dyn && (dyn.name ?? "batch"), dyn?.batch)),
      output: outputs.map((v) => valueInfo(v, dyn && (dyn.name ?? "batch"), dyn?.batch)),
    },
  };
  return { bytes: onnx.ModelProto.encode(model).finish(), inputs, outputs, variables };
};

/** Decodes a serialized ONNX model (for inspecting exported files). */
export const decodeOnnx = (bytes: Uint8Array): P.onnx.ModelProto => onnx.ModelProto.decode(bytes);
