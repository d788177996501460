/** The static shapes a graph is traced at: every kind's graphs take them. */
export interface Shapes {
  readonly batch: number;
  readonly height: number;
  readonly width: number;
  /** The training crop [height, width]: the grid position embeddings are learned at. */
  readonly trainSize: readonly [number, number];
}
