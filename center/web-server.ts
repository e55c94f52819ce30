// The reading station (issue 17): the center's page, with the gateway's login, sessions, roles,
// audit trail and live feed (src/web/), its users and audit in this node's own local.db, and its
// data read from the center's PostgreSQL. Routes (docs/center.md, "The reading station"):
//   GET  /api/worklist                 ECGs waiting to be read, oldest first medical contact first
//   GET  /api/ecgs/:id                 one ECG: measurements, statements, file, reading, its case's times
//   GET  /api/ecgs/:id/svg             the ECG on standard paper (25 mm/s, 10 mm/mV)
//   GET  /api/ecgs/:id/original        the cart's own file, as stored
//   POST /api/ecgs/:id/reading         the cardiologist's reading, sent to the crew as the contract's report
//   GET  /api/cases, /api/cases.csv    the cases' time nodes, and their CSV export
//   GET  /api/county                   each vehicle's last position, state and case; the convergence alerts
// Live: the workers NOTIFY after each commit; this process LISTENs and pushes to the pages.
import { createReadStream, readFileSync, realpathSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { FastifyInstance, FastifyRequest } from "fastify";
import pg from "pg";
import type { Logger } from "pino";
import { z } from "zod";
import { decodeEcgFile, sniffEcgFormat } from "../protocols/ecg/files.ts";
import type { Ecg12 } from "../protocols/ecg/index.ts";
import { renderEcgSvg } from "../protocols/ecg/svg.ts";
import { ecg12FromBody } from "../src/events/ecg12.ts";
import { AuditLog } from "../src/audit/audit.ts";
import { localDbPath, openLocalDb } from "../src/local-db.ts";
import { readBootId, monotonicSinceBoot } from "../src/time/boot.ts";
import { pageCertificate } from "../src/web/tls.ts";
import { parseBody, sendError } from "../src/web/http-errors.ts";
import { LiveHub } from "../src/web/live.ts";
import { auditQuery, authFromConfig, createBaseApp, serveStatic, WEB_ROOT } from "../src/web/server.ts";
import type { CenterConfig } from "./config.ts";
import type { Report } from "./contract.ts";
import { convergenceAlerts, destinations } from "./county.ts";
import { NOTIFY_CHANNEL, type CenterDb } from "./db.ts";
import { caseTimes, casesBetween, CSV_COLUMNS, csvRow, ecgRecord, toCsv, vehicles, worklist } from "./queries.ts";
import type { Receiver } from "./receiver.ts";

/** The center's page files, served over the gateway's web/ (shared modules: api, i18n, login, users, style). */
export const CENTER_WEB_ROOT = resolve(import.meta.dirname, "web");

export interface CenterWebOptions {
  config: CenterConfig;
  db: CenterDb;
  receiver: Receiver;
  log: Logger;
  /** The clock readings are stamped with (ms); default Date.now. */
  nowMs?: () => number;
}

export interface CenterWeb {
  app: FastifyInstance;
  url: string;
  stop(): Promise<void>;
}

const EventParams = z.strictObject({ id: z.string().min(1).max(64) });
/** The reading: STEMI, not STEMI, or another conclusion in the cardiologist's words; free text beside. */
const ReadingBody = z
  .strictObject({
    verdict: z.enum(["stemi", "not-stemi", "other"]),
    conclusion: z.string().trim().max(200).optional(),
    text: z.string().max(10_000).optional(),
  })
  .refine((b) => b.verdict !== "other" || (b.conclusion ?? "") !== "", {
    message: "an 'other' reading needs its conclusion in words",
    path: ["conclusion"],
  });
const CasesQuery = z.strictObject({
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
});

/** The report's conclusion for each verdict: the words the crew's page colours (web/reading.js: "No STEMI" is not a STEMI). */
const CONCLUSIONS = { stemi: "STEMI", "not-stemi": "No STEMI" } as const;

/**
 * The ECG to draw: the event's leads, or, for an event sent without them (`ECG_LEADS_IN_FILE`:
 * docs/protocol.md, Message size), the leads of its original file once stored here, with the event's
 * measurements and statements.
 */
async function drawable(body: Record<string, unknown>, filePath: string | null): Promise<Ecg12 | undefined> {
  const fromEvent = ecg12FromBody(body);
  if (fromEvent.leads.length > 0 || !filePath) return fromEvent.leads.length > 0 ? fromEvent : undefined;
  const bytes = await readFile(filePath);
  const format = sniffEcgFormat(bytes);
  const decoded = format ? decodeEcgFile(format, bytes) : undefined;
  return decoded?.ok
    ? { ...fromEvent, fs: decoded.ecg.fs, leads: decoded.ecg.leads, durationS: decoded.ecg.durationS }
    : undefined;
}

export async function startCenterWeb(o: CenterWebOptions): Promise<CenterWeb> {
  const { config, db, receiver } = o;
  const nowMs = o.nowMs ?? Date.now;
  const log = o.log.child({ component: "web" });
  const stateDir = config.center.stateDir;
  const local = openLocalDb(localDbPath(stateDir));
  const audit = new AuditLog(local, () => ({ ms: nowMs(), src: "system", uncMs: 0 }));
  const monoMs = monotonicSinceBoot();
  const auth = authFromConfig({
    db: local,
    audit,
    log,
    nowMs,
    monoMs,
    bootId: readBootId(),
    web: config.web,
    setupCodeFile: join(stateDir, "setup-code"),
  });
  const cert = pageCertificate(config.web, stateDir, (p: string) => readFileSync(p), "vitalgate-center");
  const { app } = createBaseApp({
    log: o.log,
    https: cert ? { cert: cert.cert, key: cert.key } : undefined,
    hostNames: config.web.hostNames,
  });
  const live = new LiveHub();
  auth.register(app);
  live.register(app, auth.guard("read"), (request) => auth.streamOwner(request));

  // The workers' commits, pushed to the pages (what changed, never patient data).
  const listener = new pg.Client({ ...db.pool.options });
  listener.on("error", (err) => log.warn({ code: "VG_CENTER_LISTEN", err: err.message }, "live updates lost"));
  listener.on("notification", (n) => {
    if (n.channel !== NOTIFY_CHANNEL || !n.payload) return;
    try {
      const m = JSON.parse(n.payload) as { type: string };
      live.publish(m.type, m);
    } catch {
      // not ours
    }
  });
  await listener.connect();
  await listener.query(`LISTEN ${NOTIFY_CHANNEL}`);

  const read = (request: FastifyRequest, what: string) =>
    audit.recordBounded(`${request.user!.username} ${what}`, {
      actor: request.user!.username,
      ip: request.ip,
      action: "read",
      target: what,
      result: "ok",
    });

  app.get("/healthz", async (_request, reply) => {
    const dbOk = await db.pool.query("SELECT 1").then(
      () => true,
      () => false,
    );
    const ok = dbOk && receiver.connected;
    return reply.code(ok ? 200 : 503).send({ ok, database: dbOk, broker: receiver.connected });
  });

  app.get("/api/center", { onRequest: auth.guard("read") }, async () => ({
    worker: config.center.worker,
    readingTargetMin: config.center.readingTargetMin,
    now: new Date(nowMs()).toISOString(),
  }));

  app.get("/api/worklist", { onRequest: auth.guard("read") }, async () => ({
    now: new Date(nowMs()).toISOString(),
    readingTargetMin: config.center.readingTargetMin,
    ecgs: await worklist(db.pool),
  }));

  app.get("/api/ecgs/:id", { onRequest: auth.guard("read") }, async (request, reply) => {
    const p = parseBody(EventParams, request.params, reply);
    if (!p) return reply;
    const e = await ecgRecord(db.pool, p.id);
    if (!e) return sendError(reply, 404, "VG_ECG_NOT_FOUND", `no ECG ${p.id} at the center`);
    read(request, `ecg ${p.id}`);
    const times = e.caseId
      ? (await caseTimes(db.pool, [{ gw: e.gw, caseId: e.caseId }])).get(`${e.gw}/${e.caseId}`)
      : undefined;
    const b = e.body;
    return {
      eventId: e.eventId,
      gw: e.gw,
      caseId: e.caseId,
      t: e.t,
      storedAt: e.storedAt,
      acquiredAt: b.acquiredAt ?? null,
      measurements: b.measurements ?? {},
      statements: b.statements ?? [],
      warnings: b.warnings ?? [],
      device: b.device ?? { model: e.dev.model, serial: e.dev.serial },
      patient: b.patient ?? null,
      fs: b.fs ?? null,
      durationS: b.durationS ?? null,
      file: {
        contentType: (b.original as { contentType?: string } | undefined)?.contentType ?? null,
        bytes: e.file.bytes,
        sha256: e.file.sha256,
        stored: e.file.path !== null,
        error: e.file.error,
      },
      reading: e.reading,
      case: times ?? null,
      readingTargetMin: config.center.readingTargetMin,
      now: new Date(nowMs()).toISOString(),
    };
  });

  app.get("/api/ecgs/:id/svg", { onRequest: auth.guard("read") }, async (request, reply) => {
    const p = parseBody(EventParams, request.params, reply);
    if (!p) return reply;
    const e = await ecgRecord(db.pool, p.id);
    if (!e) return sendError(reply, 404, "VG_ECG_NOT_FOUND", `no ECG ${p.id} at the center`);
    const ecg = await drawable(e.body, e.file.path);
    if (!ecg) return sendError(reply, 404, "VG_ECG_NO_LEADS", `ECG ${p.id} has no leads yet: its file is not complete`);
    return reply.type("image/svg+xml; charset=utf-8").send(renderEcgSvg(ecg));
  });

  app.get("/api/ecgs/:id/original", { onRequest: auth.guard("reading") }, async (request, reply) => {
    const p = parseBody(EventParams, request.params, reply);
    if (!p) return reply;
    const e = await ecgRecord(db.pool, p.id);
    if (!e?.file.path) return sendError(reply, 404, "VG_ECG_NOT_FOUND", `no stored file of ECG ${p.id}`);
    read(request, `ecg-file ${p.id}`);
    const contentType = (e.body.original as { contentType?: string } | undefined)?.contentType;
    return reply
      .type(contentType ?? "application/octet-stream")
      .header("content-disposition", `attachment; filename="${e.file.path.split("/").at(-1)}"`)
      .send(createReadStream(e.file.path));
  });

  app.post("/api/ecgs/:id/reading", { onRequest: auth.guard("reading") }, async (request, reply) => {
    const p = parseBody(EventParams, request.params, reply);
    const body = p && parseBody(ReadingBody, request.body, reply);
    if (!p || !body) return reply;
    const reader = request.user!.username;
    const at = new Date(nowMs()).toISOString();
    const conclusion = body.verdict === "other" ? body.conclusion! : CONCLUSIONS[body.verdict];
    const text = body.text?.trim() ? body.text.trim() : undefined;
    const reportId = `rp-${Date.parse(at)}-${p.id}`;
    const saved = await db.saveReading(p.id, {
      reportId,
      verdict: body.verdict,
      conclusion,
      reader,
      at,
      ...(text ? { text } : {}),
    });
    if (!saved) return sendError(reply, 404, "VG_ECG_NOT_FOUND", `no stored ECG ${p.id} at the center`);
    audit.record({
      actor: reader,
      ip: request.ip,
      action: "ecg.read",
      target: p.id,
      detail: { verdict: body.verdict, gw: saved.gw },
      result: "ok",
    });
    const report: Report = { id: reportId, eventId: p.id, reader, at, conclusion, ...(text ? { text } : {}) };
    // Sent in the background: with the broker away, mqtt.js holds it and sends it on reconnect.
    receiver.publishReport(saved.gw, report).then(
      () => db.reportSent(report),
      (err: Error) => log.warn({ code: "VG_CENTER_REPORT", err: err.message, gw: saved.gw }, "a report was not sent"),
    );
    return { ok: true, at, conclusion };
  });

  app.get("/api/cases", { onRequest: auth.guard("read") }, async (request, reply) => {
    const q = parseBody(CasesQuery, request.query, reply);
    if (!q) return reply;
    const to = q.to ?? new Date(nowMs() + 86_400_000).toISOString();
    const from = q.from ?? new Date(nowMs() - 7 * 86_400_000).toISOString();
    return { from, to, cases: await casesBetween(db.pool, from, to) };
  });

  app.get("/api/cases.csv", { onRequest: auth.guard("read") }, async (request, reply) => {
    const q = parseBody(CasesQuery, request.query, reply);
    if (!q) return reply;
    const to = q.to ?? new Date(nowMs() + 86_400_000).toISOString();
    const from = q.from ?? new Date(nowMs() - 30 * 86_400_000).toISOString();
    const cases = await casesBetween(db.pool, from, to);
    audit.record({
      actor: request.user!.username,
      ip: request.ip,
      action: "cases.export",
      detail: { from, to, cases: cases.length },
      result: "ok",
    });
    return reply
      .type("text/csv; charset=utf-8")
      .header(
        "content-disposition",
        `attachment; filename="vitalgate-time-nodes-${from.slice(0, 10)}-${to.slice(0, 10)}.csv"`,
      )
      .send("\ufeff" + toCsv([[...CSV_COLUMNS], ...cases.map(csvRow)]));
  });

  app.get("/api/county", { onRequest: auth.guard("read") }, async () => {
    const rows = await vehicles(db.pool);
    const county = config.center.county;
    const now = nowMs();
    const moving = rows
      .filter((v) => v.position)
      .map((v) => ({ gw: v.gw, ...v.position!, atMs: Date.parse(v.position!.t) }));
    const heading = destinations(moving, county.places, county, now);
    return {
      now: new Date(now).toISOString(),
      rule: { radiusM: county.radiusM, withinMin: county.withinMin, minVehicles: county.minVehicles },
      places: county.places,
      vehicles: rows.map((v) => ({ ...v, heading: heading.get(v.gw) ?? null })),
      alerts: convergenceAlerts(moving, county.places, county, now).map((a) => ({
        place: a.place.name,
        vehicles: a.vehicles.map((v) => ({ gw: v.gw, etaMin: Math.round(v.etaMin * 10) / 10 })),
      })),
    };
  });

  app.get("/api/audit", { onRequest: auth.guard("admin") }, async (request, reply) => {
    const q = parseBody(auditQuery, request.query, reply);
    return q ? { rows: audit.list(q), chain: audit.verify() } : reply;
  });

  const roots = [realpathSync(CENTER_WEB_ROOT), realpathSync(WEB_ROOT)];
  app.get("/*", async (request, reply) => serveStatic(roots, request, reply));

  const address = await app.listen({ host: config.web.host, port: config.web.port });
  log.info({ code: "VG_CENTER_WEB", url: address }, "the reading station is served");
  return {
    app,
    url: address,
    async stop() {
      await app.close();
      await listener.end().catch(() => undefined);
      local.close();
    },
  };
}
