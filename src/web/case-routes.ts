// The page's case routes (docs/web-api.md, "Cases and ECG"): the crew opens and closes cases, sets
// the patient id, taps the nodes only a person knows, and sees the 12-lead drawn on standard paper.
// Every change is audited (never with the patient id) and pushed live to every page watching, as
// are the changes the data and the center make (src/cases/case-book.ts emits them all).
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { ecg12FromBody } from "../events/ecg12.ts";
import { renderEcgSvg } from "../../protocols/ecg/svg.ts";
import { CaseError, TAPPED_NODES, type CaseBook, type CaseView, type ReportView } from "../cases/case-book.ts";
import { caseId, caseLocation, patientId } from "../cases/fields.ts";
import type { AuditEntry } from "../audit/audit.ts";
import type { WebContext } from "./context.ts";
import { parseBody, sendError } from "./http-errors.ts";

const CaseParams = z.strictObject({ id: caseId() });
const ListQuery = z.strictObject({ state: z.enum(["open", "recent"]).default("open") });
const OpenBody = z.strictObject({ location: caseLocation().optional() });
const PatientBody = z.strictObject({ patientId: patientId() });
const NodeBody = z.strictObject({
  node: z.enum(TAPPED_NODES),
  at: z.iso.datetime({ offset: true }).optional(),
  correct: z.boolean().optional(),
});
const EcgParams = z.strictObject({ eventId: z.uuid() });

export function registerCaseRoutes(app: FastifyInstance, ctx: WebContext, cases: CaseBook): void {
  const onChange = (view: CaseView) => ctx.publish("case", view);
  const onReport = (report: ReportView) => ctx.publish("report", report);
  cases.on("change", onChange);
  cases.on("report", onReport);
  app.addHook("onClose", async () => {
    cases.off("change", onChange);
    cases.off("report", onReport);
  });

  /**
   * A case change by the logged-in user, audited as done or refused (never with the patient id),
   * answered with the case. The pages and the center hear of it through the case book.
   */
  const act = async (
    request: FastifyRequest,
    reply: FastifyReply,
    action: string,
    target: string | undefined,
    detail: AuditEntry["detail"],
    run: () => Promise<CaseView>,
  ) => {
    const entry = { actor: request.user!.username, ip: request.ip, action };
    try {
      const view = await run();
      ctx.audit.record({ ...entry, target: view.id, detail, result: "ok" });
      return view;
    } catch (err) {
      if (!(err instanceof CaseError)) throw err;
      ctx.audit.record({ ...entry, target, detail: { ...detail, code: err.code }, result: "failed" });
      return sendError(reply, err.status, err.code, err.message);
    }
  };

  /** A read of patient data (the cases with their patient ids, an ECG), audited once per user and target every 10 minutes: the page re-reads often. */
  const read = (request: FastifyRequest, target: string) =>
    ctx.audit.recordBounded(
      `read|${request.user!.username}|${target}`,
      { actor: request.user!.username, ip: request.ip, action: "patient.read", target, result: "ok" },
      10 * 60_000,
    );

  app.get("/api/cases", { onRequest: ctx.guard("read") }, async (request, reply) => {
    const q = parseBody(ListQuery, request.query, reply);
    if (!q) return reply;
    read(request, "cases");
    return cases.list(q.state);
  });

  app.get("/api/readings", { onRequest: ctx.guard("read") }, async (request) => {
    read(request, "readings");
    return cases.readingsOutsideCases();
  });

  app.post("/api/cases", { onRequest: ctx.guard("cases") }, async (request, reply) => {
    const body = parseBody(OpenBody, request.body, reply);
    if (!body) return reply;
    return act(request, reply, "case.open", undefined, { location: body.location ?? "" }, () =>
      cases.openCase({ location: body.location, openedBy: request.user!.username }),
    );
  });

  app.get("/api/cases/:id", { onRequest: ctx.guard("read") }, async (request, reply) => {
    const p = parseBody(CaseParams, request.params, reply);
    if (!p) return reply;
    const c = cases.get(p.id);
    if (!c) return sendError(reply, 404, "VG_CASE_NOT_FOUND", `no case ${p.id} on this gateway`);
    read(request, `case ${p.id}`);
    return c;
  });

  app.post("/api/cases/:id/patient", { onRequest: ctx.guard("cases") }, async (request, reply) => {
    const p = parseBody(CaseParams, request.params, reply);
    const body = p && parseBody(PatientBody, request.body, reply);
    if (!p || !body) return reply;
    return act(request, reply, "case.patient", p.id, undefined, () => cases.setPatient(p.id, body.patientId));
  });

  app.post("/api/cases/:id/nodes", { onRequest: ctx.guard("cases") }, async (request, reply) => {
    const p = parseBody(CaseParams, request.params, reply);
    const body = p && parseBody(NodeBody, request.body, reply);
    if (!p || !body) return reply;
    const before = cases.get(p.id)?.nodes[body.node];
    const detail = { node: body.node, at: body.at, ...(body.correct ? { correct: true, before } : {}) };
    return act(request, reply, body.correct ? "case.node.correct" : "case.node", p.id, detail, () =>
      cases.tapNode(p.id, body.node, body.at, body.correct),
    );
  });

  app.post("/api/cases/:id/close", { onRequest: ctx.guard("cases") }, async (request, reply) => {
    const p = parseBody(CaseParams, request.params, reply);
    if (!p) return reply;
    return act(request, reply, "case.close", p.id, undefined, () => cases.closeCase(p.id));
  });

  // The 12-lead on standard paper (25 mm/s, 10 mm/mV), drawn from the stored event, without the
  // patient's name or id.
  app.get("/api/ecg/:eventId/svg", { onRequest: ctx.guard("read") }, async (request, reply) => {
    const p = parseBody(EcgParams, request.params, reply);
    if (!p) return reply;
    const event = ctx.services.eventById(p.eventId);
    if (!event || event.kind !== "ecg12")
      return sendError(reply, 404, "VG_ECG_NOT_FOUND", `no 12-lead ECG ${p.eventId} is kept on this gateway`);
    read(request, `ecg ${p.eventId}`);
    return reply
      .type("image/svg+xml; charset=utf-8")
      .send(renderEcgSvg(ecg12FromBody(event.body as Record<string, unknown>)));
  });
}
