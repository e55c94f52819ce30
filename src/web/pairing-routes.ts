// The pairing page's API (docs/web-api.md, "Pairing"): serial ports, unpaired network senders, the
// listen-only probe and preview, and the paired devices themselves. Every route needs the `devices`
// permission; every pairing, edit and removal goes into the audit trail (who, which device, how it
// ended; never patient data, which is why previews are not audited).
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { DEVICE_ID_PATTERN } from "../config/schema.ts";
import { MAX_PREVIEW_MS, invalid, PairingError, type Pairing } from "../pairing/index.ts";
import { boxAddresses } from "../pairing/setup.ts";
import type { WebContext } from "./context.ts";
import { sendError } from "./http-errors.ts";

const probeBody = z.strictObject({
  path: z.string().min(1).max(4096).describe("A port from GET /api/pairing/ports."),
  drivers: z
    .array(z.string().min(1).max(64))
    .min(1)
    .max(32)
    .optional()
    .describe("Only these drivers; default every probeable one."),
});

const previewBody = z.strictObject({
  driver: z.string().min(1).max(64),
  options: z.record(z.string(), z.unknown()).default({}),
  ms: z.int().min(100).max(MAX_PREVIEW_MS).optional(),
});

const setupBody = z.strictObject({
  driver: z.string().min(1).max(64),
  options: z.record(z.string(), z.unknown()).default({}),
});

/** A device body must at least be an object; its fields are checked by the pairing (with the driver's schema). */
const deviceBody = z.record(z.string(), z.unknown());

type Action = "device.pair" | "device.edit" | "device.remove";

function send(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof PairingError)
    return sendError(reply, err.status, err.code, err.message, err.field === undefined ? {} : { field: err.field });
  throw err; // the server's error handler: a 500, logged
}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body ?? {});
  if (!r.success) throw invalid(r.error);
  return r.data;
}

function deviceId(request: FastifyRequest): string {
  const id = (request.params as { id?: string }).id ?? "";
  if (!DEVICE_ID_PATTERN.test(id)) throw new PairingError("VG_NOT_FOUND", "no such device", 404, "id");
  return id;
}

/** Longest option value kept in the audit trail, in characters. */
const AUDIT_OPTION_CHARS = 256;

/**
 * The driver and options a pairing asked for, for its audit record: what a device is told to watch,
 * listen on or open (a folder, a port) is what an assessor must see. Options are settings, never
 * patient data; each is kept as a string of at most AUDIT_OPTION_CHARS, at most 32 of them.
 */
function deviceDetail(body: unknown): { driver?: string; options?: Record<string, string | number | boolean | null> } {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return {};
  const { driver, options } = body as { driver?: unknown; options?: unknown };
  const detail: ReturnType<typeof deviceDetail> = {};
  if (typeof driver === "string") detail.driver = driver.slice(0, 64);
  if (typeof options === "object" && options !== null && !Array.isArray(options)) {
    detail.options = Object.fromEntries(
      Object.entries(options)
        .slice(0, 32)
        .map(([k, v]) => [
          k.slice(0, 64),
          v === null || typeof v === "number" || typeof v === "boolean"
            ? v
            : (typeof v === "string" ? v : (JSON.stringify(v) ?? String(v))).slice(0, AUDIT_OPTION_CHARS),
        ]),
    );
  }
  return detail;
}

export function registerPairingRoutes(app: FastifyInstance, ctx: WebContext, pairing: Pairing): void {
  const guard = ctx.guard("devices");

  /** A serial path the page may open: one the ports list shows (by path or alias), not any file on the box. */
  const listedPort = (path: string) => {
    if (!pairing.ports().some((p) => p.path === path || p.byId === path)) {
      throw new PairingError("VG_NOT_A_PORT", `${path} is not one of the serial ports listed for pairing`, 400, "path");
    }
  };

  /** Runs a change, audits it (with the driver and options asked for), tells the pages watching live. */
  const change = async (
    request: FastifyRequest,
    reply: FastifyReply,
    action: Action,
    target: string | undefined,
    run: (actor: string) => Promise<unknown>,
  ) => {
    const actor = request.user?.username ?? "?";
    const asked = deviceDetail(request.body);
    try {
      const result = await run(actor);
      const driver = (result as { driver?: string } | undefined)?.driver;
      ctx.audit.record({
        actor,
        ip: request.ip,
        action,
        target,
        ...(driver ? { detail: { driver, ...asked } } : {}),
        result: "ok",
      });
      if (target) {
        const status = ctx.services.devices.get(target);
        ctx.publish("device", status ?? { id: target, removed: true });
      }
      return result;
    } catch (err) {
      const code = err instanceof PairingError ? err.code : "VG_INTERNAL";
      ctx.audit.record({ actor, ip: request.ip, action, target, detail: { code, ...asked }, result: "failed" });
      return send(reply, err);
    }
  };

  app.get("/api/pairing/ports", { onRequest: guard }, async () => pairing.ports());

  app.get("/api/pairing/senders", { onRequest: guard }, async () => pairing.senders());

  app.post("/api/pairing/probe", { onRequest: guard }, async (request, reply) => {
    try {
      const body = parse(probeBody, request.body);
      listedPort(body.path);
      return await pairing.probe(body.path, body.drivers);
    } catch (err) {
      return send(reply, err);
    }
  });

  app.post("/api/pairing/preview", { onRequest: guard }, async (request, reply) => {
    try {
      const body = parse(previewBody, request.body);
      const port = body.options.port;
      if ((body.options.transport ?? "serial") === "serial" && typeof port === "string") listedPort(port);
      return await pairing.preview(body.driver, body.options, body.ms ?? ctx.services.probeMs());
    } catch (err) {
      return send(reply, err);
    }
  });

  // What to set on the device itself: the address and port it sends to, its AE title, serial settings.
  app.post("/api/pairing/setup", { onRequest: guard }, async (request, reply) => {
    try {
      const body = parse(setupBody, request.body);
      return pairing.setup(body.driver, body.options, boxAddresses());
    } catch (err) {
      return send(reply, err);
    }
  });

  app.get("/api/devices/paired", { onRequest: guard }, async () => pairing.list());

  app.post("/api/devices", { onRequest: guard }, async (request, reply) => {
    const body = request.body as { id?: unknown } | undefined;
    const target = typeof body?.id === "string" ? body.id.slice(0, 64) : undefined;
    const device = await change(request, reply, "device.pair", target, (actor) =>
      pairing.add(parse(deviceBody, request.body), actor),
    );
    return reply.sent ? reply : reply.code(201).send(device);
  });

  /** A change to the device `:id` names: an id no device can have is a 404 before anything runs. */
  const changeDevice =
    (action: Action, run: (id: string, request: FastifyRequest, actor: string) => Promise<unknown>) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      let id: string;
      try {
        id = deviceId(request);
      } catch (err) {
        return send(reply, err);
      }
      return change(request, reply, action, id, (actor) => run(id, request, actor));
    };

  app.put(
    "/api/devices/:id",
    { onRequest: guard },
    changeDevice("device.edit", (id, request, actor) => pairing.update(id, parse(deviceBody, request.body), actor)),
  );

  app.delete(
    "/api/devices/:id",
    { onRequest: guard },
    changeDevice("device.remove", async (id) => {
      await pairing.remove(id);
      return { ok: true };
    }),
  );
}
