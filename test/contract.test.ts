// The wire contract (docs/protocol.md) against the code: the published JSON Schemas are what the code's
// zod schemas generate; every JSON example in the page parses with them, with no field they do not
// know; every limit the page states is the code's constant. A center built from the page alone gets
// what the gateway sends.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { drivers } from "../drivers/registry.ts";
import { MAX_MESSAGE_ID } from "../src/events/intake.ts";
import { EVENT_KINDS, type EventKind } from "../src/events/model.ts";
import { BODIES, envelopeOf } from "../src/events/schemas.ts";
import { SEQ_RESERVATION } from "../src/outbox/outbox.ts";
import { MARK_BATCH, MARK_DELAY_MS } from "../src/uplink/forwarder.ts";
import { protocolSchemas, SCHEMA_DIR, schemaText } from "../src/uplink/json-schemas.ts";
import {
  ack,
  commandRequest,
  commandResult,
  COMMANDS,
  MAX_INBOUND_BYTES,
  MAX_RECEIPT_IDS,
  MAX_RESEND,
  receipt,
  report,
  status,
} from "../src/uplink/messages.ts";
import { ROOT } from "./support/processes.ts";

const PAGE = readFileSync(join(ROOT, "docs/protocol.md"), "utf8");

/** Each ```json block of the page, with the heading it stands under and its line. */
function jsonExamples(): { heading: string; line: number; text: string }[] {
  const out: { heading: string; line: number; text: string }[] = [];
  const lines = PAGE.split("\n");
  let heading = "";
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (/^#{2,4} /.test(l)) heading = l.replace(/^#+ /, "");
    if (l !== "```json") continue;
    const start = i + 1;
    while (lines[++i] !== "```") if (i >= lines.length) throw new Error(`unclosed json block at line ${start}`);
    out.push({ heading, line: start, text: lines.slice(start, i).join("\n") });
  }
  return out;
}

/** A block's JSON values: the block as one, or one per line (exchanges, event streams). */
function values(text: string): unknown[] {
  try {
    return [JSON.parse(text)];
  } catch {
    return text
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as unknown);
  }
}

type Json = Record<string, unknown>;
const isKind = (k: unknown): k is EventKind => EVENT_KINDS.includes(k as EventKind);

/** Which schema an example is, from its shape (and, for a bare body, the kind its section is about). */
function schemaOf(v: Json, heading: string): { name: string; schema: z.ZodType } {
  if (v.v === 1 && isKind(v.kind)) return { name: `event-${v.kind}`, schema: envelopeOf(v.kind) };
  if (v.state === "online" || v.state === "offline") return { name: "status", schema: status };
  if (Array.isArray(v.ids)) return { name: "receipt", schema: receipt };
  if ("eventId" in v && "reader" in v) return { name: "report", schema: report };
  if ("of" in v) return { name: "ack", schema: ack };
  if ("name" in v && "ok" in v) return { name: "cmd-result", schema: commandResult };
  if ("id" in v && Object.keys(v).every((k) => ["id", "args", "expiresAt", "replyTo"].includes(k)))
    return { name: "cmd-request", schema: commandRequest };
  const kind = heading.split(" ")[0];
  if (isKind(kind)) return { name: `${kind} body`, schema: BODIES[kind] };
  throw new Error(`cannot tell what this example is (under "${heading}"): ${JSON.stringify(v).slice(0, 120)}`);
}

/** Parses with the schema, and says what the schema does not know (zod drops unknown keys). */
function check(schema: z.ZodType, v: unknown): string | undefined {
  const r = schema.safeParse(v);
  if (!r.success) return r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
  if (JSON.stringify(sorted(r.data)) !== JSON.stringify(sorted(v)))
    return `fields the schema does not have: parsed ${JSON.stringify(r.data).slice(0, 300)}`;
  return undefined;
}

function sorted(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sorted);
  if (v && typeof v === "object")
    return Object.fromEntries(
      Object.entries(v)
        .filter(([, x]) => x !== undefined)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, x]) => [k, sorted(x)]),
    );
  return v;
}

describe("the wire contract, docs/protocol.md against the code", () => {
  it(`publishes a JSON Schema per event kind, message and command in ${SCHEMA_DIR}, generated from the code's (regenerate: -u)`, async () => {
    const schemas = protocolSchemas();
    for (const [file, schema] of Object.entries(schemas))
      await expect(schemaText(schema), `${SCHEMA_DIR}/${file} is stale`).toMatchFileSnapshot(
        join(ROOT, SCHEMA_DIR, file),
      );
    // Nothing else in the folder: a schema the code no longer makes is not left behind.
    const dir = join(ROOT, SCHEMA_DIR);
    if (existsSync(dir)) expect(readdirSync(dir).sort()).toEqual(Object.keys(schemas).sort());
    for (const kind of EVENT_KINDS) expect(schemas).toHaveProperty([`event-${kind}.json`]);
    for (const name of Object.keys(COMMANDS)) expect(schemas).toHaveProperty([`cmd-${name}-args.json`]);
  });

  it("has every JSON example of the page parse with the published schemas, with no field they lack", () => {
    const examples = jsonExamples();
    expect(examples.length).toBeGreaterThan(15);
    const problems: string[] = [];
    const seen = new Set<string>();
    for (const ex of examples) {
      const vs = values(ex.text) as Json[];
      vs.forEach((v, i) => {
        const { name, schema } = schemaOf(v, ex.heading);
        seen.add(name);
        const problem = check(schema, v);
        if (problem) problems.push(`line ${ex.line} (${name}): ${problem}`);
        // A command's request and its answer: the args and the result by the command's schemas.
        const answer = vs[i + 1];
        if (name === "cmd-request" && answer && answer.ok === true && (answer.name as string) in COMMANDS) {
          const c = COMMANDS[answer.name as keyof typeof COMMANDS];
          const p = check(c.args, v.args ?? {});
          if (p) problems.push(`line ${ex.line} (${String(answer.name)} args): ${p}`);
        }
        if (name === "cmd-result" && v.ok === true && (v.name as string) in COMMANDS) {
          const p = check(COMMANDS[v.name as keyof typeof COMMANDS].result, v.result);
          if (p) problems.push(`line ${ex.line} (${String(v.name)} result): ${p}`);
        }
      });
    }
    expect(problems).toEqual([]);
    // The page shows each kind of message it describes.
    for (const name of ["status", "receipt", "report", "ack", "cmd-request", "cmd-result"])
      expect(seen).toContain(name);
  });

  it("states every limit as the code has it (the page's Limits table, and where the text repeats one)", () => {
    const section = PAGE.slice(PAGE.indexOf("\n## Limits\n"), PAGE.indexOf("\n## ", PAGE.indexOf("\n## Limits\n") + 5));
    const rows = [...section.matchAll(/^\| ([^|]+) \| ([^|]+) \|$/gm)]
      .map(([, name, value]) => [name!.trim(), value!.trim()] as const)
      .filter(([name]) => name !== "limit" && !name.startsWith("---"));
    const numbers = (value: string) => [...value.matchAll(/\d[\d,]*/g)].map(([n]) => Number(n.replace(/,/g, "")));
    const maxLength = (s: z.ZodType) => (s as unknown as { maxLength: number }).maxLength;
    const code: Record<string, number[]> = {
      "largest message from the center (receipt, report, command)": [MAX_INBOUND_BYTES, 256],
      "ids in one receipt": [MAX_RECEIPT_IDS],
      "characters of an id in a receipt": [maxLength(receipt.shape.ids.element)],
      "characters of a command's `id`": [maxLength(commandRequest.shape.id)],
      "`resend` range, `toSeq` − `fromSeq`": [MAX_RESEND],
      "characters of a report's `reader`, `conclusion`": [maxLength(report.shape.reader)],
      "characters of a report's `text`": [maxLength(report.shape.text.unwrap())],
      "acknowledgements the gateway writes to its outbox at once": [MARK_BATCH, MARK_DELAY_MS],
      "`seq` jump at a restart, at most": [SEQ_RESERVATION],
      "characters of a device's message id carried in `msg.id`": [MAX_MESSAGE_ID],
    };
    expect(maxLength(report.shape.conclusion)).toBe(maxLength(report.shape.reader));
    expect(Object.fromEntries(rows.map(([name, value]) => [name, numbers(value)]))).toEqual(code);
    // The text repeats some of them.
    const stated = (pattern: RegExp) => numbers(PAGE.match(pattern)?.[1] ?? "NaN");
    expect(stated(/At most ([\d,]+) ids per message/)).toEqual([MAX_RECEIPT_IDS]);
    expect(stated(/in batches \(([\d,]+) acknowledgements/)).toEqual([MARK_BATCH]);
    expect(stated(/acknowledgements or (\d+) ms/)).toEqual([MARK_DELAY_MS]);
    expect(stated(/at every restart, by at most ([\d,]+)/)).toEqual([SEQ_RESERVATION]);
    expect(stated(/a number ([\d,]+) ahead of the next `seq`/)).toEqual([SEQ_RESERVATION]);
    expect(stated(/`toSeq - fromSeq` under ([\d,]+)/)).toEqual([MAX_RESEND]);
    expect(stated(/An id over ([\d,]+) characters is not carried/)).toEqual([MAX_MESSAGE_ID]);
    // The largest receipt fits the largest message: 6,000 UUIDs as `{"ids":["…", "…"]}`.
    const uuid = "01a20934-dddf-728d-b777-b7b616793204";
    expect(JSON.stringify({ ids: Array(MAX_RECEIPT_IDS).fill(uuid) }).replace(/","/g, '", "').length).toBeLessThan(
      MAX_INBOUND_BYTES,
    );
  });

  it("lists for every driver the event kinds it makes, and the page's list of kinds is the code's", () => {
    for (const d of drivers) {
      expect(d.sends.length, d.id).toBeGreaterThan(0);
      for (const k of d.sends) expect(EVENT_KINDS, d.id).toContain(k);
    }
    const listed = PAGE.match(/Kinds used in `ev\/\{kind\}`: (.*)\./)?.[1];
    expect(listed?.match(/`(\w+)`/g)?.map((k) => k.replace(/`/g, ""))).toEqual([...EVENT_KINDS]);
  });
});
