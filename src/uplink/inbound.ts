// What the county center sends a gateway (docs/protocol.md): receipts, ECG reports and commands,
// each checked against its schema (src/uplink/messages.ts) before anything is done, and each answered:
// a command with its result on `cmd-result`, a receipt or a report with an acknowledgement on `ack`.
// An answer goes to the request's MQTT 5 response topic (with its correlation data) or, with MQTT
// 3.1.1, to the `replyTo` in its payload, when that lies below the default answer topic (the only
// topics a gateway's ACL lets it publish answers to); else to the default topic.
import type { IClientPublishOptions } from "mqtt";
import type { Logger } from "pino";
import { z } from "zod";
import { outsideText } from "../log.ts";
import { ack, commandRequest, MAX_INBOUND_BYTES, receipt, report, type CenterReport } from "./messages.ts";

/** A command the center may send on `cmd/{name}`: its argument schema and what it does. */
export interface Command {
  args: z.ZodType;
  run(args: unknown): unknown;
}

/** A command's name (from the topic) and a refusal's reason, as they reach the log, the result and the audit trail. */
const MAX_COMMAND_NAME = 64;
const MAX_REFUSAL_REASON = 500;

/** The MQTT 5 properties of a request that shape its answer. */
export interface RequestProperties {
  responseTopic?: string;
  correlationData?: Buffer;
}

export interface InboundDeps {
  log: Logger;
  /** `vitalgate/v1/{gw}`. */
  base: string;
  protocolVersion: 4 | 5;
  nowMs: () => number;
  /** Whether the gateway's clock is synchronized: a command's expiry cannot be judged without. Default yes. */
  timeKnown?: () => boolean;
  commands?: Record<string, Command>;
  /** Marks the events a receipt names delivered; returns how many rows it marked. */
  receive(ids: string[]): number;
  /**
   * Takes the center's reading of an ECG (kept with its case, shown to the crew), or throws why not
   * (an ECG this gateway never sent). Returns the case it was kept with.
   */
  acceptReport?: (r: CenterReport) => { caseId?: string };
  /** A command refused before it ran (not JSON, malformed, expired, unknown, invalid arguments), and why. */
  refused(name: string, reason: string): void;
  /** A command ran (it may have put events back in the queue). */
  ran(): void;
  publish(topic: string, payload: string, options: IClientPublishOptions): void;
}

type Answer = { ok: true; result: unknown } | { ok: false; error: string };

function issues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
}

export class Inbound {
  readonly topics: { receipt: string; report: string; cmd: string; cmdResult: string; ack: string };
  #deps: InboundDeps;

  constructor(deps: InboundDeps) {
    this.#deps = deps;
    const { base } = deps;
    this.topics = {
      receipt: `${base}/receipt`,
      report: `${base}/report`,
      cmd: `${base}/cmd/`,
      cmdResult: `${base}/cmd-result`,
      ack: `${base}/ack`,
    };
  }

  /** A message on one of the topics the gateway subscribes to. */
  handle(topic: string, payload: Buffer, properties: RequestProperties = {}): void {
    const t = this.topics;
    const command = topic.startsWith(t.cmd) ? outsideText(topic.slice(t.cmd.length), MAX_COMMAND_NAME) : undefined;
    const of = topic === t.receipt ? "receipt" : topic === t.report ? "report" : undefined;
    if (command === undefined && of === undefined) return;
    const fail = (error: string, id?: string, replyTo?: string) => {
      this.#deps.log.warn(
        { topic, code: "VG_CENTER_MESSAGE_IGNORED", reason: error },
        "message from the center ignored",
      );
      if (command !== undefined) this.#refuse(command, properties, id, replyTo, error);
      else this.#ack(of!, properties, id, replyTo, { ok: false, error });
    };
    if (payload.length > MAX_INBOUND_BYTES)
      return fail(`message of ${payload.length} bytes is over the limit of ${MAX_INBOUND_BYTES}`);
    let json: unknown;
    try {
      json = JSON.parse(payload.toString("utf8"));
    } catch {
      return fail("payload is not JSON");
    }
    if (command !== undefined) return void this.#runCommand(command, json, properties);
    // The id and replyTo, if readable, shape the answer even to a message that is otherwise invalid.
    const head = z
      .object({ id: z.string().max(128).optional(), replyTo: z.string().max(256).optional() })
      .safeParse(json);
    const id = head.success ? head.data.id : undefined;
    const replyTo = head.success ? head.data.replyTo : undefined;
    const to = this.#answerTopic(this.topics.ack, properties, replyTo);
    if ("error" in to) return fail(to.error, id);
    if (of === "receipt") {
      const r = receipt.safeParse(json);
      if (!r.success) return fail(`invalid receipt: ${issues(r.error)}`, id, replyTo);
      const delivered = this.#deps.receive(r.data.ids);
      this.#ack("receipt", properties, id, replyTo, { ok: true, result: { ids: r.data.ids.length, delivered } });
    } else {
      const r = report.safeParse(json);
      if (!r.success) return fail(`invalid report: ${issues(r.error)}`, id, replyTo);
      let kept: { caseId?: string };
      try {
        kept = this.#deps.acceptReport?.(r.data) ?? {};
      } catch (err) {
        return fail((err as Error).message, id, replyTo);
      }
      this.#ack("report", properties, id, replyTo, { ok: true, result: { eventId: r.data.eventId, ...kept } });
    }
  }

  async #runCommand(name: string, json: unknown, properties: RequestProperties): Promise<void> {
    const req = commandRequest.safeParse(json);
    if (!req.success)
      return this.#refuse(name, properties, undefined, undefined, `invalid request: ${issues(req.error)}`);
    const { id, replyTo, expiresAt } = req.data;
    const deps = this.#deps;
    if (expiresAt !== undefined) {
      if (deps.timeKnown?.() === false)
        return this.#refuse(
          name,
          properties,
          id,
          replyTo,
          `not run: it expires at ${expiresAt}, and this gateway's clock is not synchronized to tell`,
        );
      const now = deps.nowMs();
      if (now > Date.parse(expiresAt))
        return this.#refuse(
          name,
          properties,
          id,
          replyTo,
          `not run: expired at ${expiresAt} (it is ${new Date(now).toISOString()})`,
        );
    }
    const command = deps.commands?.[name];
    if (!command) return this.#refuse(name, properties, id, replyTo, `unknown command "${name}"`);
    const args = command.args.safeParse(req.data.args ?? {});
    if (!args.success) return this.#refuse(name, properties, id, replyTo, `invalid args: ${issues(args.error)}`);
    // Where the answer goes is checked before anything is done: a command whose result cannot be told is not run.
    const to = this.#answerTopic(this.topics.cmdResult, properties, replyTo);
    if ("error" in to) return this.#refuse(name, properties, id, undefined, to.error);
    let answer: Answer;
    try {
      answer = { ok: true, result: await command.run(args.data) };
      deps.ran();
    } catch (err) {
      answer = { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
    this.#commandResult(name, properties, id, replyTo, answer);
  }

  /** Answers a command refused before it ran, and says so to whoever audits the center's commands. */
  #refuse(
    name: string,
    properties: RequestProperties,
    id: string | undefined,
    replyTo: string | undefined,
    error: string,
  ): void {
    // The reason quotes what the center sent (unknown keys, the name): bounded and sanitized for the log and the audit trail.
    const reason = outsideText(error, MAX_REFUSAL_REASON);
    this.#commandResult(name, properties, id, replyTo, { ok: false, error: reason });
    this.#deps.refused(name, reason);
  }

  #commandResult(
    name: string,
    properties: RequestProperties,
    id: string | undefined,
    replyTo: string | undefined,
    answer: Answer,
  ): void {
    this.#deps.log.info({ command: name, ok: answer.ok }, "command from the center");
    this.#send(this.topics.cmdResult, properties, replyTo, { id, name, ...answer });
  }

  #ack(
    of: "receipt" | "report",
    properties: RequestProperties,
    id: string | undefined,
    replyTo: string | undefined,
    answer: Answer,
  ): void {
    this.#send(this.topics.ack, properties, replyTo, ack.parse({ of, id, ...answer }));
  }

  /** Publishes an answer where it was asked for, when that is allowed; else to the default topic. */
  #send(defaultTopic: string, properties: RequestProperties, replyTo: string | undefined, answer: object): void {
    // A topic not allowed was refused before anything was done: that refusal goes to the default topic.
    const to = this.#answerTopic(defaultTopic, properties, replyTo);
    const options: IClientPublishOptions = { qos: 1 };
    if (this.#deps.protocolVersion === 5 && properties.correlationData)
      options.properties = { correlationData: properties.correlationData };
    this.#deps.publish("topic" in to ? to.topic : defaultTopic, JSON.stringify(answer), options);
  }

  /** The MQTT 5 response topic, else `replyTo`, when it is the default topic or below it. */
  #answerTopic(
    defaultTopic: string,
    properties: RequestProperties,
    replyTo: string | undefined,
  ): { topic: string } | { error: string } {
    const asked = properties.responseTopic ?? replyTo;
    if (asked === undefined) return { topic: defaultTopic };
    if (asked === defaultTopic || (asked.startsWith(`${defaultTopic}/`) && !/[+#]/.test(asked)))
      return { topic: asked };
    return {
      error: `the answer cannot go to ${outsideText(asked, 128)}: only to ${defaultTopic} or a topic below it`,
    };
  }
}
