// What the center may ask of the gateway (DESIGN.md §6, docs/protocol.md "Commands"): ping, resend,
// case-open, case-close, devices. Each command's arguments and result are src/uplink/messages.ts's;
// the forwarder validates the arguments and answers the requester. Case commands are audited.
import type { Audit } from "../audit/audit.ts";
import { CaseError, type CaseBook } from "../cases/case-book.ts";
import type { DeviceManager } from "../devices/device-manager.ts";
import type { Outbox } from "../outbox/outbox.ts";
import { VERSION } from "../version.ts";
import type { Command } from "./inbound.ts";
import { COMMANDS, type CommandArgs, type CommandResult } from "./messages.ts";

export interface CommandDeps {
  nowMs(): number;
  outbox: Pick<Outbox, "stats" | "requeue">;
  cases: Pick<CaseBook, "openCase" | "closeCase" | "list">;
  devices: Pick<DeviceManager, "list" | "locationOf">;
  /** A driver's device kind ("monitor", "ecg-cart"...), undefined for one the registry lacks. */
  kindOf(driver: string): string | undefined;
  /** The audit trail while the gateway runs. */
  audit(): Audit | undefined;
}

/**
 * What the center may ask of the gateway (DESIGN.md §6): each command's arguments and result are
 * src/uplink/messages.ts's; the forwarder validates the arguments.
 */
export function centerCommands(deps: CommandDeps): Record<string, Command> {
  const command = <N extends keyof typeof COMMANDS>(
    name: N,
    run: (args: CommandArgs<N>) => CommandResult<N> | Promise<CommandResult<N>>,
  ): Command => ({ args: COMMANDS[name].args, run: (args) => run(args as CommandArgs<N>) });
  return {
    ping: command("ping", () => ({
      pong: true,
      at: new Date(deps.nowMs()).toISOString(),
      version: VERSION,
      queue: deps.outbox.stats().pending,
    })),
    resend: command("resend", ({ fromSeq, toSeq = fromSeq }) => {
      const requeued = deps.outbox.requeue(fromSeq, toSeq);
      deps.audit()?.record({
        actor: "center",
        action: "queue.resend",
        detail: { fromSeq, toSeq, requeued },
        result: "ok",
      });
      return { requeued };
    }),
    // Dispatch: the center opens the ambulance's case as it sends it out (docs/protocol.md).
    "case-open": command("case-open", (a) =>
      centerCaseAction(
        deps.audit(),
        "case.open",
        a.caseId,
        {
          location: a.location ?? "",
          dispatched: a.dispatchedAt !== undefined,
          patient: a.patientId !== undefined,
        },
        async () => {
          const c = await deps.cases.openCase({ ...a, openedBy: "center" });
          return { caseId: c.id, openedAt: c.openedAt, location: c.location ?? "" };
        },
      ),
    ),
    "case-close": command("case-close", ({ caseId: id }) =>
      centerCaseAction(deps.audit(), "case.close", id, {}, async () => {
        const c = await deps.cases.closeCase(id);
        return { caseId: c.id, closedAt: c.closedAt };
      }),
    ),
    // Which locations `case-open` can name: the devices with theirs, and the cases open now.
    devices: command("devices", () => {
      const devices = deps.devices.list().map((d) => {
        const location = deps.devices.locationOf(d.id);
        return {
          id: d.id,
          driver: d.driver,
          kind: deps.kindOf(d.driver) ?? "unknown",
          ...(d.name !== undefined ? { name: d.name } : {}),
          ...(location ? { location } : {}),
          state: d.state,
        };
      });
      return {
        devices,
        locations: [...new Set(devices.flatMap((d) => (d.location ? [d.location] : [])))],
        openCases: deps.cases.list("open").map((c) => ({ caseId: c.id, location: c.location ?? "" })),
      };
    }),
  };
}

/** Runs a case command from the center and audits it, as done or refused (no patient data in the record). */
async function centerCaseAction<T extends { caseId: string }>(
  audit: Audit | undefined,
  action: string,
  target: string | undefined,
  detail: Record<string, unknown>,
  run: () => Promise<T>,
): Promise<T> {
  try {
    const result = await run();
    audit?.record({ actor: "center", action, target: result.caseId, detail, result: "ok" });
    return result;
  } catch (err) {
    const code = err instanceof CaseError ? err.code : "VG_CASE_FAILED";
    audit?.record({ actor: "center", action, target, detail: { ...detail, code }, result: "failed" });
    throw err;
  }
}
