/** kappa: functional TypeScript toolkit for large-vocabulary image segmentation. */
export {};
