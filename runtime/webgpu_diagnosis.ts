/**
 * Why the WebGPU provider has no adapter.
 *
 * When Dawn (inside ONNX Runtime) finds no adapter, the error ONNX Runtime raises only says "No
 * supported adapters"; the reason — no Vulkan loader, a loader without a device, or a device that Dawn
 * rejected — is printed by Dawn on the process's stderr, which a process cannot read back. The
 * diagnosis therefore repeats the attempt in a child process (`webgpu_probe.ts`) and classifies what
 * Dawn printed there. It runs only after a failure, so a working provider costs nothing.
 */
import { fileURLToPath } from "node:url";

export type WebGpuFailure =
  | { readonly _tag: "NoLoader"; readonly detail: string }
  | { readonly _tag: "NoDevice"; readonly detail: string }
  | { readonly _tag: "AdapterRejected"; readonly detail: string }
  | { readonly _tag: "Unknown"; readonly detail: string };

const SETUP_HINT = "on a machine without a GPU, .ci/setup-vulkan installs Mesa's software Vulkan device";

/** Dawn's warnings (`Warning: <message>` lines) without the limit adjustments it prints on success too. */
const warnings = (stderr: string): string[] =>
  stderr.split("\n")
    // deno-lint-ignore no-control-regex -- ONNX Runtime colors its own log lines with ANSI escapes
    .map((l) => l.replace(/\x1b\[[0-9;]*m/g, "").trim())
    .filter((l) => l.startsWith("Warning: ") && !l.includes("artificially reduced"))
    .map((l) => l.slice("Warning: ".length));

/** Classifies Dawn's stderr from a failed adapter request. */
export const classifyWebGpuFailure = (stderr: string): WebGpuFailure => {
  const lines = warnings(stderr);
  const loader = lines.find((l) => /couldn't load vulkan/i.test(l));
  if (loader) return { _tag: "NoLoader", detail: loader };
  const noDriver = lines.find((l) =>
    /found no drivers|VK_ERROR_INCOMPATIBLE_DRIVER|no physical device/i.test(l)
  );
  if (noDriver || lines.length === 0) {
    return { _tag: "NoDevice", detail: noDriver ?? "the Vulkan loader reported no device" };
  }
  return { _tag: "AdapterRejected", detail: lines.join("; ") };
};

/** The one-line reason a `ProviderUnavailable` error carries. */
export const describeWebGpuFailure = (f: WebGpuFailure): string => {
  switch (f._tag) {
    case "NoLoader":
      return `no Vulkan loader: ${f.detail} (install libvulkan1 and a Vulkan driver; ${SETUP_HINT})`;
    case "NoDevice":
      return `the Vulkan loader is installed but found no device: ${f.detail} (install a GPU's Vulkan ` +
        `driver; ${SETUP_HINT})`;
    case "AdapterRejected":
      return `Dawn rejected the Vulkan adapter: ${f.detail} (Mesa's lavapipe needs Mesa >= 25, e.g. from ` +
        `bookworm-backports)`;
    case "Unknown":
      return `no WebGPU adapter could be created: ${f.detail}`;
  }
};

/** Repeats the adapter request in a child process and classifies what Dawn printed there. */
export const diagnoseWebGpu = async (): Promise<WebGpuFailure> => {
  try {
    const probe = fileURLToPath(new URL("./webgpu_probe.ts", import.meta.url));
    const config = fileURLToPath(new URL("../deno.json", import.meta.url));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", "--config", config, probe],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    if (stdout.includes("webgpu: ok")) {
      return { _tag: "Unknown", detail: "the adapter request succeeded in a child process but not here" };
    }
    return classifyWebGpuFailure(new TextDecoder().decode(out.stderr));
  } catch (e) {
    return { _tag: "Unknown", detail: `Dawn found no adapter, and the diagnosis could not run (${e})` };
  }
};
