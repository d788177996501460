/**
 * The IR: a graph of typed symbolic tensors with static shapes, built by tracing.
 *
 * Nodes are appended in topological order (an input always exists before its users). Each node holds
 * one primitive (`Prim`, a name plus typed, named fields), its output tensors, and the name scope that
 * was active when it was added, e.g. `model.psi.block0.attn`. Output types are inferred when the node is
 * added (see `ops.ts`), so a shape error surfaces at the line that caused it, naming that scope.
 *
 * The `Prim` union is declared here, with the tensors and nodes that hold it, because the three refer to
 * each other; what each primitive means and does (inference, lowering, VJP) is its rule in
 * `primitives.ts`. Imports go one way: ops.ts imports primitives.ts, which imports this module, which
 * imports neither.
 *
 * A graph is the one mutable thing in the engine: tracing appends to it, and autodiff appends the
 * backward nodes to the same graph. Everything downstream (printing, lowering, describe) only reads it.
 */
import { Data } from "effect";
import type { DType, HostArray, Shape, TensorType } from "./dtype.ts";
import type { Init } from "./init.ts";

/** A construction-time error: a bad shape, dtype, axis or name, with the scope path that caused it. */
export class GraphError
  extends Data.TaggedError("GraphError")<{ readonly path: string; readonly message: string }> {
  override toString(): string {
    return this.message;
  }
}

// ------------------------------------------------------------------------------------------------
// The primitives: one union member per op, a name plus typed, named fields

export type UnaryOp = "neg" | "exp" | "log" | "sqrt" | "erf" | "tanh" | "sigmoid" | "relu" | "abs" | "sign";
export type BinaryOp = "add" | "sub" | "mul" | "div" | "pow" | "max" | "min";
export type CompareOp = "equal" | "less" | "greater" | "lessOrEqual" | "greaterOrEqual";
export type LogicOp = "and" | "or";
export type ReduceOp = "reduceSum" | "reduceMean" | "reduceMax";

/** One union member per op of `K`, each with the same fields (so `Extract<Prim, { op: "add" }>` works). */
type Each<K extends string, F> = { [k in K]: { readonly op: k } & F }[K];

/**
 * A 2-D convolution's geometry and channel grouping, shared by `conv` and the `convTranspose` that is
 * its adjoint.
 */
export interface ConvGeometry {
  readonly strides: readonly [number, number];
  /** [top, left, bottom, right] of the convolution's input (may differ, e.g. TensorFlow's "SAME"). */
  readonly pads: readonly [number, number, number, number];
  readonly dilations: readonly [number, number];
  /**
   * Channel groups: input and output channels split into `group` consecutive blocks, block i of the
   * output sees only block i of the input, so the weight is [o, c / group, kh, kw]. 1 is an ordinary
   * convolution; group = c (with o a multiple of c) is a depthwise one.
   */
  readonly group: number;
}

export type Prim =
  | { readonly op: "input"; readonly name: string; readonly dtype: DType; readonly shape: Shape }
  | {
    readonly op: "variable";
    readonly name: string;
    readonly dtype: DType;
    readonly shape: Shape;
    readonly init: Init;
    /** Trainable variables are parameters; others are state such as optimizer moments or memory banks. */
    readonly trainable: boolean;
  }
  | { readonly op: "constant"; readonly value: HostArray; readonly dtype: DType; readonly shape: Shape }
  | { readonly op: "matmul"; readonly a: Tensor; readonly b: Tensor }
  | Each<BinaryOp | CompareOp | LogicOp, { readonly a: Tensor; readonly b: Tensor }>
  | { readonly op: "not"; readonly x: Tensor }
  | Each<UnaryOp, { readonly x: Tensor }>
  | { readonly op: "gelu"; readonly x: Tensor; readonly approximate: "none" | "tanh" }
  | Each<"softmax" | "logSoftmax", { readonly x: Tensor; readonly axis: number }>
  | {
    readonly op: "layerNorm";
    readonly x: Tensor;
    readonly scale: Tensor;
    readonly bias: Tensor;
    /** First normalized axis: statistics are taken over axes [axis, rank). */
    readonly axis: number;
    readonly epsilon: number;
  }
  | Each<ReduceOp, { readonly x: Tensor; readonly axes: readonly number[]; readonly keepDims: boolean }>
  | { readonly op: "argMax"; readonly x: Tensor; readonly axis: number; readonly keepDims: boolean }
  | { readonly op: "reshape"; readonly x: Tensor; readonly shape: Shape }
  | { readonly op: "transpose"; readonly x: Tensor; readonly perm: readonly number[] }
  | { readonly op: "concat"; readonly xs: readonly Tensor[]; readonly axis: number }
  /** Consecutive pieces of `sizes` along `axis`, one output each (the inverse of concat). */
  | { readonly op: "split"; readonly x: Tensor; readonly axis: number; readonly sizes: readonly number[] }
  | {
    readonly op: "slice";
    readonly x: Tensor;
    /** One entry per sliced axis: `[start, end, step]` with Python slicing semantics. */
    readonly axes: readonly number[];
    readonly starts: readonly number[];
    readonly ends: readonly number[];
    readonly steps: readonly number[];
  }
  | {
    readonly op: "pad";
    readonly x: Tensor;
    /** ONNX layout: all begins, then all ends; non-negative. */
    readonly pads: readonly number[];
    readonly value: number;
  }
  | { readonly op: "gather"; readonly x: Tensor; readonly indices: Tensor; readonly axis: number }
  | { readonly op: "gatherElements"; readonly x: Tensor; readonly indices: Tensor; readonly axis: number }
  | {
    readonly op: "scatterElements";
    readonly x: Tensor;
    readonly indices: Tensor;
    readonly updates: Tensor;
    readonly axis: number;
    /** "none" overwrites (indices must be unique for a meaningful gradient); "add" accumulates. */
    readonly reduction: "none" | "add";
  }
  | { readonly op: "where"; readonly cond: Tensor; readonly a: Tensor; readonly b: Tensor }
  | { readonly op: "cast"; readonly x: Tensor; readonly to: DType }
  | { readonly op: "oneHot"; readonly indices: Tensor; readonly depth: number; readonly dtype: DType }
  | {
    readonly op: "topK";
    readonly x: Tensor;
    readonly k: number;
    readonly axis: number;
    readonly largest: boolean;
  }
  | { readonly op: "expand"; readonly x: Tensor; readonly shape: Shape }
  | { readonly op: "clip"; readonly x: Tensor; readonly min?: number; readonly max?: number }
  | { readonly op: "resize"; readonly x: Tensor; readonly height: number; readonly width: number }
  | ({
    readonly op: "conv";
    readonly x: Tensor;
    readonly w: Tensor;
    /** [o], added to every output position of its channel (ONNX Conv's `B`). */
    readonly bias?: Tensor;
  } & ConvGeometry)
  | ({
    /**
     * The adjoint (transpose) of `conv` with weight `w` [o, c, kh, kw] and the same geometry: maps
     * x [n, o, ho, wo] to [n, c, size[0], size[1]], the shape of that conv's input.
     */
    readonly op: "convTranspose";
    readonly x: Tensor;
    readonly w: Tensor;
    readonly size: readonly [number, number];
  } & ConvGeometry)
  | Each<"stopGradient" | "identity", { readonly x: Tensor }>;

export type Op = Prim["op"];
export type PrimOf<K extends Op> = Extract<Prim, { op: K }>;

// ------------------------------------------------------------------------------------------------
// Tensors, nodes and the graph

/** A symbolic tensor: the `index`-th output of node `node` in `graph`. */
export class Tensor implements TensorType {
  constructor(
    readonly graph: Graph,
    readonly id: number,
    readonly dtype: DType,
    readonly shape: Shape,
    readonly node: number,
    readonly index: number,
  ) {}
  get rank(): number {
    return this.shape.length;
  }
}

export interface Node {
  readonly id: number;
  readonly prim: Prim;
  readonly outputs: readonly Tensor[];
  /** Name scope (dot-separated layer path) active when the node was added. */
  readonly scope: string;
  /** True for nodes added by autodiff or an optimizer (not part of the forward computation). */
  readonly backward: boolean;
}

export class Graph {
  readonly nodes: Node[] = [];
  /** Named graph outputs: what a plan exposes (losses, predictions, updated state). */
  readonly outputs = new Map<string, Tensor>();
  private readonly scopeStack: string[] = [];
  private readonly names = new Map<string, Tensor>();
  private tensorCount = 0;
  private backwardDepth = 0;
  private frozenDepth = 0;

  /**
   * `dataParallel`: the graph is traced for one rank of a data-parallel run. Loss sites that divide by a
   * data-dependent count (`divideByCount`, ir/count_normalized.ts) then output their local count and divide
   * by the rank's share of the global count, fed in; an ordinary graph divides by its own count.
   */
  constructor(readonly name = "graph", readonly options: { readonly dataParallel?: boolean } = {}) {}

  /** Whether the graph is traced for one rank of a data-parallel run (see the constructor). */
  get dataParallel(): boolean {
    return this.options.dataParallel === true;
  }

  /** The current scope path, e.g. `model.psi.block0`. */
  get path(): string {
    return this.scopeStack.join(".");
  }

  /** Runs `fn` with `name` pushed on the scope path (layers call this for their sub-layers). */
  scope<T>(name: string | number, fn: () => T): T {
    this.scopeStack.push(String(name));
    try {
      return fn();
    } finally {
      this.scopeStack.pop();
    }
  }

  /** Runs `fn` with the scope path replaced by `path` (autodiff files backward nodes under their forward scope). */
  atPath<T>(path: string, fn: () => T): T {
    const saved = this.scopeStack.splice(0, this.scopeStack.length, ...(path ? path.split(".") : []));
    try {
      return fn();
    } finally {
      this.scopeStack.splice(0, this.scopeStack.length, ...saved);
    }
  }

  /** Runs `fn` with every variable it declares made non-trainable (a frozen sub-model). */
  frozen<T>(fn: () => T): T {
    this.frozenDepth++;
    try {
      return fn();
    } finally {
      this.frozenDepth--;
    }
  }

  /** Whether variables declared now are frozen. */
  get isFrozen(): boolean {
    return this.frozenDepth > 0;
  }

  /** Runs `fn` with every added node marked as backward (autodiff and optimizer updates). */
  backward<T>(fn: () => T): T {
    this.backwardDepth++;
    try {
      return fn();
    } finally {
      this.backwardDepth--;
    }
  }

  /** `name` prefixed with the current scope path. */
  qualify(name: string): string {
    return this.path ? `${this.path}.${name}` : name;
  }

  /** Appends a node whose output types were already inferred. Used by `ops.ts`; not by layers. */
  addNode(prim: Prim, types: readonly TensorType[]): Tensor[] {
    const id = this.nodes.length;
    const outputs = types.map((t, index) =>
      new Tensor(this, this.tensorCount++, t.dtype, t.shape, id, index)
    );
    this.nodes.push({ id, prim, outputs, scope: this.path, backward: this.backwardDepth > 0 });
    return outputs;
  }

  /** Registers a unique name for an input or variable; a second use of the same name is an error. */
  claimName(name: string, t: Tensor): void {
    if (this.names.has(name)) {
      throw new GraphError({ path: name, message: `${name}: name is already defined` });
    }
    this.names.set(name, t);
  }

  /** The input or variable called `name`, if any. */
  lookup(name: string): Tensor | undefined {
    return this.names.get(name);
  }

  /** Exposes `t` as the graph output `name`. */
  output(name: string, t: Tensor): Tensor {
    if (t.graph !== this) {
      throw new GraphError({ path: name, message: `${name}: tensor belongs to another graph` });
    }
    if (this.outputs.has(name)) {
      throw new GraphError({ path: name, message: `${name}: output is already defined` });
    }
    this.outputs.set(name, t);
    return t;
  }

  /** The node that produced `t`. */
  producer(t: Tensor): Node {
    return this.nodes[t.node];
  }
}
