// The JSON Schemas of the wire contract (docs/protocol.md), generated from the code's own zod schemas
// (src/events/schemas.ts, src/uplink/messages.ts): one per event kind, the batch, the status, what the
// center sends and what the gateway answers, and each command's arguments and result. They are
// committed in docs/schemas/v1/ for a center to validate with; test/contract.test.ts keeps them current
// (regenerate: npx vitest run test/contract.test.ts -u).
import { z } from "zod";
import { anyEvent, envelopeOf } from "../events/schemas.ts";
import { EVENT_KINDS } from "../events/model.ts";
import { ack, commandRequest, commandResult, COMMANDS, PROTOCOL_VERSION, receipt, report, status } from "./messages.ts";

/** Where the files live in the repository: one folder per major version of the topics. */
export const SCHEMA_DIR = "docs/schemas/v1";

function jsonSchema(name: string, title: string, schema: z.ZodType): Record<string, unknown> {
  return {
    // As written (input): objects stay open to fields a later 1.x adds, as the contract asks of a consumer.
    ...z.toJSONSchema(schema, { target: "draft-2020-12", io: "input", unrepresentable: "any" }),
    $id: `urn:vitalgate:protocol:${PROTOCOL_VERSION}:${name}`,
    title,
  };
}

/** Every schema by its file name in SCHEMA_DIR. */
export function protocolSchemas(): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  const add = (name: string, title: string, schema: z.ZodType) =>
    (out[`${name}.json`] = jsonSchema(name, title, schema));
  for (const kind of EVENT_KINDS)
    add(`event-${kind}`, `vitalgate/v1/{gw}/ev/${kind}: a ${kind} event`, envelopeOf(kind));
  add("event", "vitalgate/v1/{gw}/ev/{kind}: an event of any kind", anyEvent);
  add("batch", "vitalgate/v1/{gw}/ev/batch (after gunzip): events of one priority", z.array(anyEvent));
  add("status", "vitalgate/v1/{gw}/status: the gateway's retained status", status);
  add("receipt", "vitalgate/v1/{gw}/receipt: event ids the center has stored", receipt);
  add("report", "vitalgate/v1/{gw}/report: the center's reading of an ECG", report);
  add("ack", "vitalgate/v1/{gw}/ack: what became of a receipt or report", ack);
  add("cmd-request", "vitalgate/v1/{gw}/cmd/{name}: a command", commandRequest);
  add("cmd-result", "vitalgate/v1/{gw}/cmd-result: a command's answer", commandResult);
  for (const [name, c] of Object.entries(COMMANDS)) {
    add(`cmd-${name}-args`, `vitalgate/v1/{gw}/cmd/${name}: its args`, c.args);
    add(`cmd-${name}-result`, `vitalgate/v1/{gw}/cmd-result of ${name}: its result`, c.result);
  }
  return out;
}

/** A schema file as committed: two-space indented, with a final newline. */
export function schemaText(schema: Record<string, unknown>): string {
  return `${JSON.stringify(schema, null, 2)}\n`;
}
