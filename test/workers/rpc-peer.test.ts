/**
 * protocol/rpc-peer.ts additions the room's bridge link relies on: ids with a per-peer prefix,
 * requests sent under the caller's own id and not tracked, and responses nobody waits for handed
 * to `onUntrackedResponse`. The defaults (numeric ids, no hook) are unchanged for the bridge and
 * the web client.
 */
import { describe, expect, it } from "vitest";
import { RpcPeer, RpcRequestError, type RpcOutcome } from "../../protocol/rpc-peer.ts";

function wire() {
  const sent: Array<Record<string, unknown>> = [];
  const untracked: Array<[unknown, RpcOutcome]> = [];
  return {
    sent,
    untracked,
    transport: { send: (frame: string) => void sent.push(JSON.parse(frame) as Record<string, unknown>) },
    onUntrackedResponse: (id: unknown, outcome: RpcOutcome) => void untracked.push([id, outcome]),
  };
}

describe("RpcPeer", () => {
  it("numbers requests from 1 by default, and prefixes them when asked", async () => {
    const plain = wire();
    const a = new RpcPeer(plain.transport);
    void a.request("x");
    expect(plain.sent[0]?.id).toBe(1);
    const prefixed = wire();
    const b = new RpcPeer(prefixed.transport, { idPrefix: "k3-" });
    const answered = b.request("x");
    expect(prefixed.sent[0]?.id).toBe("k3-1");
    b.receive(JSON.stringify({ jsonrpc: "2.0", id: "k3-1", result: { ok: 1 } }));
    expect(await answered).toEqual({ ok: 1 });
  });

  it("an answer for an id of another peer never settles this one's request with the same number", async () => {
    const w = wire();
    const peer = new RpcPeer(w.transport, { idPrefix: "new-", onUntrackedResponse: w.onUntrackedResponse });
    const pending = peer.request("x");
    peer.receive(JSON.stringify({ jsonrpc: "2.0", id: "old-1", result: { stale: true } }));
    peer.receive(JSON.stringify({ jsonrpc: "2.0", id: 1, result: { stale: true } }));
    expect(peer.pending.size).toBe(1);
    expect(w.untracked).toEqual([
      ["old-1", { ok: true, value: { stale: true } }],
      [1, { ok: true, value: { stale: true } }],
    ]);
    peer.receive(JSON.stringify({ jsonrpc: "2.0", id: "new-1", result: { fresh: true } }));
    expect(await pending).toEqual({ fresh: true });
  });

  it("sendRequest uses the caller's id, tracks nothing, and its answer (result or error) goes to onUntrackedResponse", () => {
    const w = wire();
    const peer = new RpcPeer(w.transport, { timeoutMs: 5, onUntrackedResponse: w.onUntrackedResponse });
    peer.sendRequest("media-7", "publish", { user: "alice" });
    expect(w.sent).toEqual([{ jsonrpc: "2.0", id: "media-7", method: "publish", params: { user: "alice" } }]);
    expect(peer.pending.size).toBe(0);
    peer.receive(JSON.stringify({ jsonrpc: "2.0", id: "media-7", error: { code: 301, message: "boom" } }));
    expect(w.untracked).toEqual([["media-7", { ok: false, error: { code: 301, message: "boom" } }]]);
  });

  it("sendRequest on a closed peer, or with an id in use, throws an RpcRequestError", () => {
    const w = wire();
    const peer = new RpcPeer(w.transport);
    void peer.request("x").catch(() => undefined);
    expect(() => peer.sendRequest(1, "y")).toThrow(RpcRequestError);
    peer.closed("gone");
    expect(() => peer.sendRequest("media-1", "y")).toThrow(RpcRequestError);
    expect(w.sent).toHaveLength(1);
  });
});
