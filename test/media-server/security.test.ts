import { createConnection } from "node:net";
import { createRequire } from "node:module";
import os from "node:os";
import type { Browser } from "playwright-core";
import type WebSocketType from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../bridge/config.ts";
import { invoke, invokeObject, type KPipeline, loadKurento } from "../../bridge/media/kurento-adapter.ts";
import { maskToken } from "../../media-server/access.ts";
import { type MediaServerHandle, mediaServerOptionsFromEnv, startMediaServer } from "../../media-server/index.ts";
import { chromiumAvailable, closeChromium, launchChromium } from "../helpers/chromium.ts";
import { startBlankPageServer } from "./helpers/browser.ts";
import { connectKurento, type KurentoClient } from "./helpers/kurento.ts";
import { RawKurentoClient, type ReplyFrame } from "./helpers/raw-client.ts";
import { waitFor } from "./helpers/werift-peer.ts";

// vitest resolves `import "ws"` to ws's browser build; load the Node one.
const WebSocket = createRequire(import.meta.url)("ws") as typeof WebSocketType;

const TOKEN = "test-token-0123456789abcdef";
const servers: MediaServerHandle[] = [];
const clients: Array<{ close(): unknown }> = [];

async function server(options: Parameters<typeof startMediaServer>[0] = {}): Promise<MediaServerHandle> {
  const started = await startMediaServer({ port: 0, webrtc: { loopbackOnly: true }, log: () => {}, ...options });
  servers.push(started);
  return started;
}

async function raw(url: string): Promise<RawKurentoClient> {
  const client = await RawKurentoClient.connect(url);
  clients.push(client);
  return client;
}

afterAll(async () => {
  for (const client of clients) await client.close();
  for (const started of servers) await started.close();
});

/** Opens `url` as a WebSocket: 101 when upgraded, else the HTTP status (and body) the server refused it with. */
function upgrade(
  url: string,
  options: { origin?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { ...options, handshakeTimeout: 10_000 });
    socket.once("open", () => {
      socket.close();
      resolve({ status: 101, body: "" });
    });
    socket.once("unexpected-response", (request, response) => {
      let body = "";
      response.on("data", (chunk: Buffer) => {
        body += chunk.toString("utf8");
      });
      response.on("end", () => {
        request.destroy();
        resolve({ status: response.statusCode ?? 0, body });
      });
    });
    socket.once("error", reject);
  });
}

/** kurento-client's MediaObject error as the tests compare it. */
function codeOf(reply: ReplyFrame): number | undefined {
  return reply.error?.code;
}

describe("listening address", () => {
  it("binds 127.0.0.1 unless told otherwise (KMS_HOST)", async () => {
    expect(mediaServerOptionsFromEnv({}).host).toBe("127.0.0.1");
    expect(mediaServerOptionsFromEnv({ KMS_HOST: "0.0.0.0" }).host).toBe("0.0.0.0");
    const local = await server();
    expect(local.host).toBe("127.0.0.1");
    expect(local.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/kurento$/);

    // Another interface of this machine, if it has one, is not listening.
    const external = Object.values(os.networkInterfaces())
      .flat()
      .find((entry) => entry && entry.family === "IPv4" && !entry.internal)?.address;
    if (external) {
      const outcome = await new Promise<string>((resolve) => {
        const socket = createConnection({ host: external, port: local.port });
        socket.once("connect", () => {
          socket.destroy();
          resolve("connected");
        });
        socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      });
      expect(outcome).toBe("ECONNREFUSED");
    }
  });
});

describe("browser origins", () => {
  it("refuses an upgrade with an Origin header (403) by default, and accepts clients without one", async () => {
    const started = await server();
    const refused = await upgrade(started.url, { origin: "https://evil.example" });
    expect(refused.status).toBe(403);
    expect(refused.body).toContain("KMS_ALLOWED_ORIGINS");
    // Version 8 of the protocol sends Sec-WebSocket-Origin instead.
    expect((await upgrade(started.url, { headers: { "Sec-WebSocket-Origin": "https://evil.example" } })).status).toBe(
      403,
    );
    expect((await upgrade(started.url)).status).toBe(101);
    const kurentoClient = await connectKurento(started.url);
    clients.push(kurentoClient);
    const pipeline = await kurentoClient.create("MediaPipeline");
    await pipeline.release();
  });

  it("accepts exactly the listed origins, or any with *", async () => {
    const listed = await server({ allowedOrigins: ["https://app.example", "http://localhost:3000"] });
    expect((await upgrade(listed.url, { origin: "https://app.example" })).status).toBe(101);
    expect((await upgrade(listed.url, { origin: "http://localhost:3000" })).status).toBe(101);
    expect((await upgrade(listed.url, { origin: "https://app.example:8443" })).status).toBe(403);
    expect((await upgrade(listed.url, { origin: "http://app.example" })).status).toBe(403);
    expect((await upgrade(listed.url, { origin: "null" })).status).toBe(403);

    const any = await server({ allowedOrigins: ["*"] });
    expect((await upgrade(any.url, { origin: "https://anything.example" })).status).toBe(101);
    expect((await upgrade(any.url, { origin: "null" })).status).toBe(101);
  });

  it("reads KMS_ALLOWED_ORIGINS as comma-separated exact origins and rejects malformed ones", () => {
    expect(
      mediaServerOptionsFromEnv({ KMS_ALLOWED_ORIGINS: "https://a.example, http://b.example:8080" }),
    ).toMatchObject({ allowedOrigins: ["https://a.example", "http://b.example:8080"] });
    expect(mediaServerOptionsFromEnv({ KMS_ALLOWED_ORIGINS: "*" }).allowedOrigins).toEqual(["*"]);
    expect(mediaServerOptionsFromEnv({ KMS_ALLOWED_ORIGINS: "" }).allowedOrigins).toBeUndefined();
    expect(() => mediaServerOptionsFromEnv({ KMS_ALLOWED_ORIGINS: "https://a.example/" })).toThrow(
      /KMS_ALLOWED_ORIGINS/,
    );
    expect(() => mediaServerOptionsFromEnv({ KMS_ALLOWED_ORIGINS: "a.example" })).toThrow(/KMS_ALLOWED_ORIGINS/);
  });

  describe.runIf(chromiumAvailable())("a real page in Chromium", () => {
    let browser: Browser;
    let pages: Awaited<ReturnType<typeof startBlankPageServer>>;
    beforeAll(async () => {
      pages = await startBlankPageServer();
      browser = await launchChromium();
    });
    afterAll(async () => {
      if (browser) await closeChromium(browser);
      await pages?.close();
    });

    /** Opens the Kurento WebSocket from a page and pings: "pong", or "refused" when the socket never opened. */
    async function pingFromPage(url: string): Promise<string> {
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        await page.goto(pages.url);
        return await page.evaluate(
          (target) =>
            new Promise<string>((resolve) => {
              const socket = new WebSocket(target);
              socket.onopen = () => socket.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping", params: {} }));
              socket.onmessage = (message) => {
                const reply = JSON.parse(String(message.data)) as { result?: { value?: string } };
                resolve(reply.result?.value ?? "no value");
                socket.close();
              };
              socket.onclose = () => resolve("refused");
            }),
          url,
        );
      } finally {
        await context.close();
      }
    }

    it("a page cannot connect by default; a listed page origin can, as Kurento's browser tutorials do", async () => {
      const origin = new URL(pages.url).origin;
      const closed = await server();
      expect(await pingFromPage(closed.url)).toBe("refused");
      const open = await server({ allowedOrigins: [origin] });
      expect(await pingFromPage(open.url)).toBe("pong");
      // With a token, the page puts it in the URL (a browser cannot set Authorization on a WebSocket).
      const guarded = await server({ allowedOrigins: [origin], token: TOKEN });
      expect(await pingFromPage(guarded.url)).toBe("refused");
      expect(await pingFromPage(`${guarded.url}?token=${TOKEN}`)).toBe("pong");
    });
  });
});

describe("shared token (KMS_TOKEN)", () => {
  it("refuses upgrades without the token or with a wrong one (401) and accepts it by query or Bearer header", async () => {
    const logs: string[] = [];
    const guarded = await server({ token: TOKEN, log: (line) => logs.push(line) });
    expect(guarded.url).not.toContain(TOKEN);

    const missing = await upgrade(guarded.url);
    expect(missing.status).toBe(401);
    expect((await upgrade(`${guarded.url}?token=wrong-token-value-000`)).status).toBe(401);
    expect((await upgrade(`${guarded.url}?token=${TOKEN}x`)).status).toBe(401);
    expect((await upgrade(guarded.url, { headers: { Authorization: "Bearer nope" } })).status).toBe(401);
    expect((await upgrade(guarded.url, { headers: { Authorization: `Basic ${TOKEN}` } })).status).toBe(401);

    expect((await upgrade(`${guarded.url}?token=${TOKEN}`)).status).toBe(101);
    expect((await upgrade(`${guarded.url}?access_token=${encodeURIComponent(TOKEN)}`)).status).toBe(101);
    expect((await upgrade(guarded.url, { headers: { Authorization: `Bearer ${TOKEN}` } })).status).toBe(101);
    // The origin check still applies to token holders.
    expect((await upgrade(`${guarded.url}?token=${TOKEN}`, { origin: "https://evil.example" })).status).toBe(403);

    expect(logs.some((line) => line.includes("wrong token"))).toBe(true);
    expect(logs.join("\n")).not.toContain(TOKEN);
    expect(logs.join("\n")).not.toContain("wrong-token-value-000");
  });

  it("serves kurento-client with the token in its URL or its own access_token option", async () => {
    const guarded = await server({ token: TOKEN });
    for (const [url, options] of [
      [`${guarded.url}?token=${TOKEN}`, {}],
      [guarded.url, { access_token: TOKEN }],
    ] as const) {
      const kurentoClient: KurentoClient = await connectKurento(url, options);
      clients.push(kurentoClient);
      const pipeline = await kurentoClient.create("MediaPipeline");
      expect(pipeline.id).toMatch(/_kurento\.MediaPipeline$/);
      await pipeline.release();
      kurentoClient.close();
    }
    await expect(connectKurento(guarded.url, { failAfter: 1 })).rejects.toThrow();
  });

  it("reads KMS_TOKEN (at least 16 characters, never echoed) and masks tokens in URLs", () => {
    expect(mediaServerOptionsFromEnv({ KMS_TOKEN: TOKEN }).token).toBe(TOKEN);
    expect(mediaServerOptionsFromEnv({ KMS_TOKEN: "" }).token).toBeUndefined();
    expect(mediaServerOptionsFromEnv({}).token).toBeUndefined();
    let message = "";
    try {
      mediaServerOptionsFromEnv({ KMS_TOKEN: "short-secret" });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain("KMS_TOKEN");
    expect(message).not.toContain("short-secret");
    expect(maskToken(`ws://h:1/kurento?token=${TOKEN}&x=1`)).toBe("ws://h:1/kurento?token=***&x=1");
    expect(maskToken(`ws://h:1/kurento?a=b&access_token=${TOKEN}`)).toBe("ws://h:1/kurento?a=b&access_token=***");
  });

  it("the bridge adds KMS_TOKEN to every KMS URI it dials, and only there", async () => {
    const guarded = await server({ token: TOKEN });
    const env = { BRIDGE_SECRET: "bridge-secret-0123456789", KMS_URIS: guarded.url };

    // Without the token the bridge's kurento-client is refused…
    const plain = loadConfig(env);
    expect(plain.dialUri(guarded.url)).toBe(guarded.url);
    const refused = loadKurento()(plain.dialUri(guarded.url), { failAfter: 1 });
    await expect(Promise.resolve(refused as unknown as PromiseLike<unknown>)).rejects.toThrow();
    refused.close();

    // …with it, it connects and works; the configuration and its URIs do not carry the token.
    const config = loadConfig({ ...env, KMS_TOKEN: TOKEN });
    expect(JSON.stringify(config)).not.toContain(TOKEN);
    const client = loadKurento()(config.dialUri(guarded.url), { failAfter: 3 });
    clients.push(client);
    await Promise.resolve(client as unknown as PromiseLike<unknown>);
    const { object: pipeline } = await invokeObject<KPipeline>((callback) => client.create("MediaPipeline", callback));
    expect(guarded.stats().pipelines).toBe(1);
    await invoke((callback) => pipeline.release(callback));
    client.close();

    // A bad KMS_TOKEN is reported without its value.
    const tooLong = "k".repeat(600);
    const error = (() => {
      try {
        loadConfig({ ...env, KMS_TOKEN: tooLong });
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain("KMS_TOKEN");
    expect((error as ConfigError).message).not.toContain(tooLong.slice(0, 40));
  });
});

describe("session isolation (two raw JSON-RPC clients)", () => {
  let shared: MediaServerHandle;
  beforeAll(async () => {
    shared = await server({ sessionGraceMs: 60_000 });
  });

  async function ownGraph(client: RawKurentoClient) {
    const created = await client.call("create", { type: "MediaPipeline", constructorParams: {} });
    const sessionId = String(created.result?.sessionId);
    const pipeline = String(created.result?.value);
    const endpoint = String(
      await client.value("create", { type: "WebRtcEndpoint", constructorParams: { mediaPipeline: pipeline } }),
    );
    const passThrough = String(
      await client.value("create", { type: "PassThrough", constructorParams: { mediaPipeline: pipeline } }),
    );
    return { sessionId, pipeline, endpoint, passThrough };
  }

  it("another session's objects are not found (40101) for describe, invoke, subscribe, unsubscribe, create in, connect and release", async () => {
    const alice = await raw(shared.url);
    const mallory = await raw(shared.url);
    const a = await ownGraph(alice);
    const aliceSubscription = String(await alice.value("subscribe", { object: a.endpoint, type: "ElementConnected" }));
    const m = await ownGraph(mallory);
    expect(m.sessionId).not.toBe(a.sessionId);

    const attempts: Array<[string, Record<string, unknown>]> = [
      ["describe", { object: a.pipeline }],
      ["invoke", { object: a.endpoint, operation: "getMediaState" }],
      ["invoke", { object: a.pipeline, operation: "getChildren" }],
      ["invoke", { object: a.endpoint, operation: "connect", operationParams: { sink: a.passThrough } }],
      ["subscribe", { object: a.passThrough, type: "ElementConnected" }],
      ["unsubscribe", { object: a.endpoint, subscription: aliceSubscription }],
      ["release", { object: a.endpoint }],
      ["release", { object: a.pipeline }],
      ["create", { type: "PassThrough", constructorParams: { mediaPipeline: a.pipeline } }],
      // Mallory's own element cannot reach Alice's, in either direction of a connect.
      ["invoke", { object: m.endpoint, operation: "connect", operationParams: { sink: a.endpoint } }],
      ["invoke", { object: m.endpoint, operation: "disconnect", operationParams: { sink: a.endpoint } }],
    ];
    for (const [method, params] of attempts) {
      const reply = await mallory.call(method, params);
      expect({ method, params, code: codeOf(reply) }).toEqual({ method, params, code: 40101 });
      expect(reply.error?.data).toMatchObject({ type: "MEDIA_OBJECT_NOT_FOUND" });
    }
    // Same answer as for an id that never existed: nothing tells Mallory the object is there.
    const unknown = await mallory.call("describe", { object: `${a.pipeline}x` });
    const foreign = await mallory.call("describe", { object: a.pipeline });
    expect(foreign.error?.message).toBe(unknown.error?.message.replace(`${a.pipeline}x`, a.pipeline));

    // In a transaction too.
    const transaction = await mallory.call("transaction", {
      operations: [{ jsonrpc: "2.0", id: 0, method: "release", params: { object: a.pipeline } }],
    });
    const [first] = (transaction.result?.value ?? []) as ReplyFrame[];
    expect(first?.error?.code).toBe(40101);

    // Unsubscribing Alice's subscription id from Mallory's own object leaves Alice's subscription alone.
    expect((await mallory.call("unsubscribe", { object: m.endpoint, subscription: aliceSubscription })).error).toBe(
      undefined,
    );

    // Everything of Alice's is intact and hers, and her events reach her only.
    expect(await alice.value("invoke", { object: a.pipeline, operation: "getChildren" })).toHaveLength(2);
    await alice.value("invoke", { object: a.endpoint, operation: "connect", operationParams: { sink: a.passThrough } });
    await waitFor(() => alice.events.length > 0, 20_000, "Alice's ElementConnected event");
    expect(alice.events[0]?.params).toMatchObject({ value: { object: a.endpoint, type: "ElementConnected" } });
    expect(mallory.events).toEqual([]);
    expect(shared.stats().pipelines).toBe(2);

    await alice.value("release", { object: a.pipeline });
    await mallory.value("release", { object: m.pipeline });
  });

  it("a session held by an open socket cannot be resumed or spoken for by another; once its socket is gone it can", async () => {
    const alice = await raw(shared.url);
    const mallory = await raw(shared.url);
    const a = await ownGraph(alice);
    await alice.value("subscribe", { object: a.endpoint, type: "ElementConnected" });

    // connect: the same answer as for an unknown session.
    const resume = await mallory.call("connect", { sessionId: a.sessionId });
    expect(resume.error).toMatchObject({ code: 40007, data: { type: "INVALID_SESSION" } });
    // Any other request naming Alice's session is served in Mallory's own, fresh session.
    const created = await mallory.call("create", { type: "MediaPipeline", sessionId: a.sessionId });
    expect(created.result?.sessionId).toEqual(expect.any(String));
    expect(created.result?.sessionId).not.toBe(a.sessionId);
    const malloryPipeline = String(created.result?.value);
    expect(codeOf(await mallory.call("describe", { object: a.pipeline, sessionId: a.sessionId }))).toBe(40101);
    expect(
      codeOf(
        await mallory.call("invoke", {
          object: a.endpoint,
          operation: "connect",
          operationParams: { sink: a.passThrough },
          sessionId: a.sessionId,
        }),
      ),
    ).toBe(40101);
    expect((await mallory.call("ping", { sessionId: a.sessionId, interval: 1000 })).result?.value).toBe("pong");

    // The ServerManager tells each session about itself only.
    const manager = "manager_ServerManager";
    expect(await mallory.value("invoke", { object: manager, operation: "getSessions" })).toEqual([
      created.result?.sessionId,
    ]);
    expect(await mallory.value("invoke", { object: manager, operation: "getPipelines" })).toEqual([malloryPipeline]);
    expect(await alice.value("invoke", { object: manager, operation: "getSessions" })).toEqual([a.sessionId]);
    expect(await alice.value("invoke", { object: manager, operation: "getPipelines" })).toEqual([a.pipeline]);

    // Alice still holds her session: her requests and her events are hers.
    const reply = await alice.call("invoke", {
      object: a.endpoint,
      operation: "connect",
      operationParams: { sink: a.passThrough },
      sessionId: a.sessionId,
    });
    expect(reply.result?.sessionId).toBe(a.sessionId);
    await waitFor(() => alice.events.length > 0, 20_000, "Alice's ElementConnected event");
    expect(mallory.events).toEqual([]);

    // Once Alice's socket has closed, her session waits for a `connect`, which any client naming it gets (KMS's rule):
    // the session id, never listed to others, is what proves it.
    await alice.close();
    const back = await raw(shared.url);
    expect((await back.call("connect", { sessionId: a.sessionId })).result?.sessionId).toBe(a.sessionId);
    expect(await back.value("invoke", { object: a.pipeline, operation: "getChildren" })).toHaveLength(2);
    await back.value("release", { object: a.pipeline });
    await mallory.value("release", { object: malloryPipeline });
    await waitFor(() => shared.stats().objects === 0, 20_000, "every object released");
  });
});

describe("session isolation with kurento-client", () => {
  it("one client cannot reach, list or take over another's objects and session", async () => {
    const started = await server({ sessionGraceMs: 60_000 });
    const first = await connectKurento(started.url);
    const second = await connectKurento(started.url);
    clients.push(first, second);
    const pipeline = await first.create("MediaPipeline");
    const own = await second.create("MediaPipeline");

    // kurento-client's getMediaobjectById describes the object: the other client's is a ReferenceError (40101).
    const lookup = second as unknown as { getMediaobjectById(id: string): Promise<unknown> };
    await expect(lookup.getMediaobjectById(pipeline.id)).rejects.toMatchObject({ code: 40101 });
    const mine = (first as unknown as { getMediaobjectById(id: string): Promise<{ id: string }> }).getMediaobjectById(
      pipeline.id,
    );
    await expect(mine).resolves.toMatchObject({ id: pipeline.id });

    type Manager = Awaited<ReturnType<KurentoClient["getServerManager"]>> & { getSessions(): Promise<string[]> };
    const managers = (await Promise.all([first.getServerManager(), second.getServerManager()])) as Manager[];
    expect(await managers[0]?.getPipelines()).toEqual([expect.objectContaining({ id: pipeline.id })]);
    expect(await managers[1]?.getPipelines()).toEqual([expect.objectContaining({ id: own.id })]);
    const [firstSessions, secondSessions] = await Promise.all(managers.map((manager) => manager.getSessions()));
    expect(firstSessions).toHaveLength(1);
    expect(secondSessions).toHaveLength(1);
    const firstSession = String(firstSessions?.[0]);
    expect(firstSession).not.toBe(secondSessions?.[0]);

    // A raw client naming the first client's session gets 40007, and the first client keeps working.
    const intruder = await raw(started.url);
    expect(codeOf(await intruder.call("connect", { sessionId: firstSession }))).toBe(40007);
    expect(codeOf(await intruder.call("describe", { object: pipeline.id, sessionId: firstSession }))).toBe(40101);
    const endpoint = await pipeline.create("WebRtcEndpoint");
    expect(endpoint.id.startsWith(pipeline.id)).toBe(true);
    expect(started.stats()).toMatchObject({ pipelines: 2, objects: 3 });

    await pipeline.release();
    await own.release();
    first.close();
    second.close();
  });
});
