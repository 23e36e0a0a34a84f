/**
 * A sample webhook receiver (README "Webhooks"): checks each request's
 * signature and timestamp, drops duplicates by event id (delivery is at least
 * once), and hands every new event to `onEvent` in the order it arrives (the
 * worker sends one room's events in order).
 *
 *   WEBHOOK_SECRET=<the worker's> PORT=9000 node examples/webhook-receiver.ts
 *
 * prints one line per event. Answer 2xx only once an event is safely handled:
 * anything else (or no answer within 10 s) makes the worker retry it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyWebhook, type WebhookEvent } from "../protocol/webhooks.ts";

export interface ReceiverOptions {
  readonly secret: string;
  /** A new event (never the same id twice). Throwing answers 500, so the worker sends it again. */
  readonly onEvent: (event: WebhookEvent) => void | Promise<void>;
  /** Remembers this many ids to drop duplicates (default 10,000). */
  readonly remember?: number;
}

export function createWebhookReceiver(options: ReceiverOptions): Server {
  const seen = new Set<string>();
  const remember = options.remember ?? 10_000;
  return createServer((request, response) => void handle(request, response));

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (request.method !== "POST") return answer(response, 405, "POST only");
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of request) {
      size += (chunk as Buffer).length;
      if (size > 64 * 1024) return answer(response, 413, "too large");
      chunks.push(chunk as Buffer);
    }
    const check = await verifyWebhook(options.secret, {
      signature: request.headers[SIGNATURE_HEADER] as string | undefined,
      timestamp: request.headers[TIMESTAMP_HEADER] as string | undefined,
      body: Buffer.concat(chunks).toString("utf8"),
    });
    if (!check.ok) return answer(response, 401, check.reason);
    if (seen.has(check.event.id)) return answer(response, 200, "duplicate");
    try {
      await options.onEvent(check.event);
    } catch (error) {
      return answer(response, 500, String(error));
    }
    seen.add(check.event.id);
    if (seen.size > remember) seen.delete(seen.values().next().value as string);
    answer(response, 200, "ok");
  }
}

function answer(response: ServerResponse, status: number, text: string): void {
  response.writeHead(status, { "content-type": "text/plain" });
  response.end(text);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const secret = process.env.WEBHOOK_SECRET;
  if (!secret) {
    process.stderr.write("usage: WEBHOOK_SECRET=<the worker's> PORT=9000 node examples/webhook-receiver.ts\n");
    process.exit(2);
  }
  const port = Number(process.env.PORT ?? 9000);
  createWebhookReceiver({
    secret,
    onEvent: (event) => {
      const who = event.data.user ? ` ${event.data.user}` : "";
      process.stdout.write(
        `${new Date(event.timestamp).toISOString()} ${event.room} #${event.seq} ${event.type}${who}\n`,
      );
    },
  }).listen(port, "127.0.0.1", () => process.stdout.write(`webhook receiver on http://127.0.0.1:${port}/\n`));
}
