/**
 * Headless Chromium driven over the DevTools protocol (a WebSocket, no npm package): what the web tests
 * and `bench web` use to open kappa's page, run code in it, take screenshots and catch downloads.
 *
 * Chromium starts with the flags this machine needs (no sandbox as root, no GPU process, no background
 * networking: its connections would be refused) and a fresh profile in a temp folder, removed on close.
 * `--enable-unsafe-webgpu` lets the page ask for a WebGPU adapter; headless Chromium without a GPU then
 * offers only SwiftShader (DESIGN.md, "In the browser").
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const CANDIDATES = ["chromium", "chromium-browser", "google-chrome"];

/** The first Chromium binary on PATH, or undefined. */
export const findChromium = async (): Promise<string | undefined> => {
  for (const name of CANDIDATES) {
    const { success } = await new Deno.Command("sh", { args: ["-c", `command -v ${name}`], stdout: "null" })
      .output();
    if (success) return name;
  }
  return undefined;
};

/** Why the browser tests cannot run here, or undefined when Chromium is on PATH. */
export const noChromiumReason = async (): Promise<string | undefined> =>
  (await findChromium()) === undefined
    ? `no Chromium on PATH (tried ${CANDIDATES.join(", ")}); run .ci/setup or apt-get install -y chromium`
    : undefined;

interface Pending {
  readonly resolve: (v: Record<string, unknown>) => void;
  readonly reject: (e: Error) => void;
  readonly method: string;
}

type Listener = (params: Record<string, unknown>, sessionId?: string) => void;

/** A DevTools protocol connection: commands with replies, and events by name. */
class Connection {
  private next = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(private readonly socket: WebSocket) {
    socket.onmessage = (ev) => {
      const msg = JSON.parse(ev.data as string);
      if (msg.id !== undefined) {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
        else p.resolve(msg.result ?? {});
        return;
      }
      for (const l of this.listeners.get(msg.method) ?? []) l(msg.params ?? {}, msg.sessionId);
    };
    socket.onclose = () => {
      for (const p of this.pending.values()) p.reject(new Error(`${p.method}: the browser closed`));
      this.pending.clear();
    };
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string) {
    const id = this.next++;
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      this.socket.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  }

  on(method: string, listener: Listener): () => void {
    const set = this.listeners.get(method) ?? new Set();
    set.add(listener);
    this.listeners.set(method, set);
    return () => set.delete(listener);
  }
}

/** One tab: evaluate code, screenshot, console lines. */
export interface Page {
  /** Evaluates an expression (awaiting a promise it returns) and returns its JSON value. */
  readonly evaluate: <T = unknown>(expression: string) => Promise<T>;
  /** A PNG screenshot of the viewport. */
  readonly screenshot: () => Promise<Uint8Array>;
  /** Sets the files of the `<input type="file">` matched by `selector`, as a user picking them would. */
  readonly setInputFiles: (selector: string, files: readonly string[]) => Promise<void>;
  /** Polls `expression` until it is truthy (throws after `timeoutMs`, with the page's console). */
  readonly waitFor: (expression: string, timeoutMs?: number) => Promise<void>;
  /** Console lines and uncaught errors so far (for messages when a check fails). */
  readonly console: readonly string[];
  readonly close: () => Promise<void>;
}

export interface Browser {
  /** Opens `url` in a new tab of `width`×`height` and waits for its load event. */
  readonly open: (url: string, size?: { width: number; height: number }) => Promise<Page>;
  /** Saves downloads into `dir`; `waitForDownload` resolves with the file name of the next one to finish. */
  readonly allowDownloads: (dir: string) => Promise<void>;
  readonly waitForDownload: (timeoutMs?: number) => Promise<string>;
  /**
   * CPU seconds used so far by the browser's processes (Linux /proc: Chromium and every process under
   * it, their waited-for children included; NaN elsewhere), so that benchmarks can tell the tab's own
   * work from other processes' load.
   */
  readonly cpuSeconds: () => number;
  /** The browser's product and version, e.g. "Chrome/156.0.8078.129". */
  readonly version: () => Promise<string>;
  readonly close: () => Promise<void>;
}

export const HEADLESS_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--hide-scrollbars",
  "--enable-unsafe-webgpu",
];

/** Reads Chromium's stderr until it prints its DevTools WebSocket address. */
const devtoolsAddress = async (stderr: ReadableStream<Uint8Array>): Promise<string> => {
  const reader = stderr.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`chromium exited before its DevTools address:\n${text.slice(-2000)}`);
    text += decoder.decode(value, { stream: true });
    const m = /DevTools listening on (ws:\/\/\S+)/.exec(text);
    if (m) {
      // Keep draining stderr, or Chromium blocks once the pipe is full.
      (async () => {
        while (!(await reader.read()).done);
      })().catch(() => {});
      return m[1];
    }
  }
};

/** CPU seconds (user + system, waited-for children included) of process `root` and its descendants. */
export const processTreeSeconds = (root: number): number => {
  try {
    const stats = new Map<number, { ppid: number; seconds: number }>();
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      let text: string;
      try {
        text = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      } catch {
        continue; // gone meanwhile
      }
      // Fields after the command name (which may hold spaces): state is field 3, ppid 4, utime 14 … cstime 17.
      const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
      stats.set(Number(entry.name), {
        ppid: Number(f[1]),
        seconds: [11, 12, 13, 14].reduce((sum, i) => sum + Number(f[i]), 0) / 100,
      });
    }
    let total = 0;
    const inTree = (pid: number): boolean => {
      for (let p = pid, hops = 0; p > 1 && hops < 64; p = stats.get(p)?.ppid ?? 0, hops++) {
        if (p === root) return true;
      }
      return false;
    };
    for (const [pid, s] of stats) if (inTree(pid)) total += s.seconds;
    return total;
  } catch {
    return NaN;
  }
};

/** Starts headless Chromium with a fresh profile; `close` ends it and removes the profile. */
export const launchBrowser = async (extraFlags: readonly string[] = []): Promise<Browser> => {
  const chromium = await findChromium();
  if (!chromium) throw new Error((await noChromiumReason())!);
  const profile = await mkdtemp(join(tmpdir(), "kappa-chromium-"));
  const child = new Deno.Command(chromium, {
    args: [
      ...HEADLESS_FLAGS,
      ...extraFlags,
      `--user-data-dir=${profile}`,
      "--remote-debugging-port=0",
      "about:blank",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let connection: Connection;
  try {
    const address = await devtoolsAddress(child.stderr);
    const socket = new WebSocket(address);
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error(`cannot connect to ${address}`));
    });
    connection = new Connection(socket);
  } catch (e) {
    child.kill();
    await child.status;
    await rm(profile, { recursive: true, force: true });
    throw e;
  }
  const cdp = connection;
  const downloads: { file: string }[] = [];
  const downloadWaiters: ((file: string) => void)[] = [];
  const guids = new Map<string, string>();
  cdp.on("Browser.downloadWillBegin", (p) => guids.set(p.guid as string, p.suggestedFilename as string));
  cdp.on("Browser.downloadProgress", (p) => {
    if (p.state !== "completed") return;
    const file = guids.get(p.guid as string) ?? String(p.guid);
    const waiter = downloadWaiters.shift();
    if (waiter) waiter(file);
    else downloads.push({ file });
  });

  const open = async (url: string, { width, height } = { width: 1280, height: 900 }): Promise<Page> => {
    const { targetId } = await cdp.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await cdp.send("Target.attachToTarget", { targetId, flatten: true }) as {
      sessionId: string;
    };
    const send = (method: string, params: Record<string, unknown> = {}) =>
      cdp.send(method, params, sessionId);
    const lines: string[] = [];
    cdp.on("Runtime.consoleAPICalled", (p, s) => {
      if (s !== sessionId) return;
      const args = (p.args as { value?: unknown; description?: string }[]).map((a) =>
        a.value !== undefined ? String(a.value) : a.description ?? ""
      );
      lines.push(`${p.type}: ${args.join(" ")}`);
    });
    cdp.on("Runtime.exceptionThrown", (p, s) => {
      if (s !== sessionId) return;
      const d = p.exceptionDetails as { text: string; exception?: { description?: string } };
      lines.push(`exception: ${d.exception?.description ?? d.text}`);
    });
    await send("Runtime.enable");
    await send("Page.enable");
    await send("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: 1, mobile: false });
    const loaded = new Promise<void>((resolve) => {
      const off = cdp.on("Page.loadEventFired", (_p, s) => {
        if (s === sessionId) {
          off();
          resolve();
        }
      });
    });
    await send("Page.navigate", { url });
    await loaded;
    return {
      console: lines,
      evaluate: async <T>(expression: string) => {
        const r = await send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true }) as {
          result: { value?: T };
          exceptionDetails?: { text: string; exception?: { description?: string } };
        };
        if (r.exceptionDetails) {
          throw new Error(r.exceptionDetails.exception?.description ?? r.exceptionDetails.text);
        }
        return r.result.value as T;
      },
      setInputFiles: async (selector, files) => {
        const { root } = await send("DOM.getDocument", { depth: 0 }) as { root: { nodeId: number } };
        const { nodeId } = await send("DOM.querySelector", { nodeId: root.nodeId, selector }) as {
          nodeId: number;
        };
        if (!nodeId) throw new Error(`no element matches ${selector}`);
        await send("DOM.setFileInputFiles", { nodeId, files: [...files] });
      },
      waitFor: async (expression, timeoutMs = 120_000) => {
        const until = Date.now() + timeoutMs;
        while (true) {
          const r = await send("Runtime.evaluate", {
            expression: `Boolean(${expression})`,
            returnByValue: true,
          }) as {
            result: { value?: boolean };
          };
          if (r.result.value) return;
          if (Date.now() > until) {
            throw new Error(
              `waited ${timeoutMs} ms for ${expression}; the page's console:\n${lines.join("\n")}`,
            );
          }
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      },
      screenshot: async () => {
        const { data } = await send("Page.captureScreenshot", { format: "png" }) as { data: string };
        return Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
      },
      close: async () => {
        await cdp.send("Target.closeTarget", { targetId });
      },
    };
  };

  return {
    open,
    allowDownloads: async (dir) => {
      await cdp.send("Browser.setDownloadBehavior", {
        behavior: "allow",
        downloadPath: dir,
        eventsEnabled: true,
      });
    },
    waitForDownload: (timeoutMs = 60_000) => {
      const done = downloads.shift();
      if (done) return Promise.resolve(done.file);
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no download finished in ${timeoutMs} ms`)),
          timeoutMs,
        );
        downloadWaiters.push((file) => {
          clearTimeout(timer);
          resolve(file);
        });
      });
    },
    cpuSeconds: () => processTreeSeconds(child.pid),
    version: async () => ((await cdp.send("Browser.getVersion")) as { product: string }).product,
    close: async () => {
      await cdp.send("Browser.close").catch(() => {});
      try {
        child.kill();
      } catch {
        // already gone
      }
      await child.status;
      await rm(profile, { recursive: true, force: true });
    },
  };
};
