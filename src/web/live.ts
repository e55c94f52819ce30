// The page's live feed (docs/web-api.md, GET /api/live): server-sent events fanned out to every
// page watching. Bounded on every side, for a small box: at most `maxStreams` streams, and at most
// `maxPerSession` of them for one login (one viewer must not take them all); a message for
// a stream whose socket has not taken the previous ones is dropped for that stream instead of
// queued (a stalled phone must not grow the daemon's memory); a heartbeat comment keeps idle
// connections open through proxies and ends streams whose session has expired.
import type { ServerResponse } from "node:http";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { sendError } from "./http-errors.ts";

const EVENT_TYPE = /^[a-z][a-z0-9-]{0,31}$/;

export interface LiveHubOptions {
  maxStreams?: number;
  /** Streams one session may hold at once (a page, a second tab, a reconnect overlapping the old stream). */
  maxPerSession?: number;
  heartbeatMs?: number;
  /** Bytes a stream's socket may hold unsent before messages for it are dropped. */
  maxBufferedBytes?: number;
  /** Told the number of streams when it changes, and each dropped message (for /metrics). */
  onStreams?: (n: number) => void;
  onDropped?: () => void;
}

interface Stream {
  res: ServerResponse;
  alive: () => boolean;
  session: string;
}

/** Whom a stream belongs to: its session's key, and whether that session still holds. */
export interface StreamOwner {
  session: string;
  alive: () => boolean;
}

export class LiveHub {
  readonly maxStreams: number;
  readonly maxPerSession: number;
  #heartbeatMs: number;
  #maxBuffered: number;
  #o: LiveHubOptions;
  #streams = new Set<Stream>();
  #timer: NodeJS.Timeout | null = null;
  /** Messages not sent to some stream because its socket was full, since start. */
  dropped = 0;

  constructor(o: LiveHubOptions = {}) {
    this.maxStreams = o.maxStreams ?? 20;
    this.maxPerSession = o.maxPerSession ?? 4;
    this.#heartbeatMs = o.heartbeatMs ?? 15_000;
    this.#maxBuffered = o.maxBufferedBytes ?? 256 * 1024;
    this.#o = o;
  }

  get streams(): number {
    return this.#streams.size;
  }

  /**
   * GET /api/live behind `guard`; `owner(request)` names the stream's session and says, at each
   * heartbeat, whether it still holds (a logged-out or expired page stops receiving).
   */
  register(
    app: FastifyInstance,
    guard: (request: FastifyRequest, reply: FastifyReply) => Promise<void>,
    owner: (request: FastifyRequest) => StreamOwner,
  ): void {
    app.get("/api/live", { onRequest: guard }, async (request, reply) => {
      const { session, alive } = owner(request);
      if (this.#streams.size >= this.maxStreams)
        return sendError(reply, 503, "VG_LIVE_FULL", `already ${this.maxStreams} pages watching live: close one`);
      const mine = [...this.#streams].filter((s) => s.session === session).length;
      if (mine >= this.maxPerSession)
        return sendError(
          reply,
          429,
          "VG_LIVE_SESSION_FULL",
          `this login already watches live on ${this.maxPerSession} pages: close one`,
        );
      reply.hijack();
      const res = reply.raw;
      // Hijacked: the headers set by the hooks (security headers) are written here, by hand.
      res.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        "x-accel-buffering": "no",
      });
      res.write("retry: 3000\n\n");
      const stream: Stream = { res, alive, session };
      this.#streams.add(stream);
      this.#o.onStreams?.(this.#streams.size);
      res.on("close", () => {
        this.#streams.delete(stream);
        this.#o.onStreams?.(this.#streams.size);
      });
      this.#timer ??= setInterval(() => this.#heartbeat(), this.#heartbeatMs).unref();
    });
    app.addHook("preClose", async () => this.close());
  }

  /** Sends one event to every stream; `type` is the SSE event name. */
  publish(type: string, data: unknown): void {
    if (!EVENT_TYPE.test(type)) throw new Error(`live event type ${JSON.stringify(type)} must match ${EVENT_TYPE}`);
    if (this.#streams.size === 0) return;
    // JSON.stringify escapes newlines inside strings, so the message is one data: line.
    this.#send(`event: ${type}\ndata: ${JSON.stringify(data) ?? "null"}\n\n`);
  }

  #send(text: string, heartbeat = false): void {
    for (const s of this.#streams) {
      if (s.res.writableLength > this.#maxBuffered) {
        if (!heartbeat) {
          this.dropped++;
          this.#o.onDropped?.();
        }
        continue;
      }
      s.res.write(text);
    }
  }

  #heartbeat(): void {
    for (const s of this.#streams) {
      if (!s.alive()) {
        this.#streams.delete(s);
        s.res.end();
      }
    }
    if (this.#streams.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = null;
      return;
    }
    this.#send(": heartbeat\n\n", true);
  }

  /** Ends every stream (the server is closing). */
  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    for (const s of this.#streams) s.res.end();
    this.#streams.clear();
  }
}
