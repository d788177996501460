import * as ort from "onnxruntime-node";

Deno.test("onnxruntime-node loads and lists the CPU backend", () => {
  const names = ort.listSupportedBackends().map((b) => b.name);
  if (!names.includes("cpu")) throw new Error(`cpu backend missing: ${names}`);
});
