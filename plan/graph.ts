/**
 * The IR: a graph of typed symbolic tensors with static shapes, built by tracing.
 *
 * Nodes are appended in topological order (an input always exists before its users). Each node holds
 * one primitive (`Prim`, a name plus typed, named fields), its output tensors, and the name scope that
 * was active when it was added, e.g. `model.psi.block0.attn`. Output types are inferred when the node is
 * added (see `ops.ts`), so a shape error surfaces at the line that caused it, naming that scope.
 *
 * A graph is the one mutable thing in the engine: tracing appends to it, and autodiff appends the
 * backward nodes to the same graph. Everything downstream (printing, lowering, describe) only reads it.
 */
import { Data } from "effect";
import type { DType, Shape, TensorType } from "./dtype.ts";
import type { Prim } from "./primitives.ts";

/** A construction-time error: a bad shape, dtype, axis or name, with the scope path that caused it. */
export class GraphError
  extends Data.TaggedError("GraphError")<{ readonly path: string; readonly message: string }> {
  override toString(): string {
    return this.message;
  }
}

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

  constructor(readonly name = "graph") {}

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
