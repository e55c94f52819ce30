// The daemon's HTTP side: health, metrics and status JSON. `createHttpServer` builds the app without
// listening, so tests use `inject()`; the gateway listens. The web page (pairing, cases) extends it.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { Logger } from "pino";
import type { Gateway } from "./gateway.ts";

export async function createHttpServer({ gateway, log }: { gateway: Gateway; log: Logger }): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: log.child({ component: "http" }) as FastifyBaseLogger,
    // Scrapes of /metrics every few seconds would drown the journal.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1 << 20,
  });
  app.get("/healthz", async (_req, reply) => {
    const s = gateway.status();
    const ok = gateway.outbox.isOpen && s.store.state === "ok";
    return reply.code(ok ? 200 : 503).send({ ok, store: s.store.state, uplink: s.uplink.state, queue: s.queue.pending });
  });
  app.get("/metrics", async (_req, reply) => {
    const body = await gateway.metrics.registry.metrics();
    return reply.type(gateway.metrics.registry.contentType).send(body);
  });
  app.get("/api/status", async () => gateway.status());
  return app;
}
