// The NTP source: an SNTP client (RFC 4330) polling the configured servers, the county center's
// among them. Each poll sends a short burst to every server and keeps the exchange with the least
// round trip; servers whose answers disagree with the majority are dropped; the survivor with the
// smallest error bound is reported. The packet work is in protocols/sntp (pure); here is the UDP.
import { randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { isIPv6 } from "node:net";
import type { Logger } from "pino";
import {
  NTP_PORT,
  bestOfBurst,
  encodeSntpRequest,
  sntpMeasure,
  truechimers,
  type SntpMeasurement,
} from "../../protocols/sntp/index.ts";
import { VitalgateError } from "../errors.ts";
import type { TimeSample, TimeSource } from "./service.ts";

export interface NtpServer {
  host: string;
  port: number;
}

/** One exchange's result on the monotonic timescale: offsetMs is true UTC − monotonic ms. */
export interface NtpResult extends SntpMeasurement {
  /** Monotonic ms when the reply arrived. */
  at: number;
}

/** Asks one server once. Rejects with a VitalgateError (VG_NTP_TIMEOUT, VG_NTP_REJECTED, VG_NTP_SOCKET). */
export type NtpQuery = (server: NtpServer, timeoutMs: number) => Promise<NtpResult>;

/** "ntp.example.org", "10.1.2.3:1123", "[fd00::1]:123" to host and port. */
export function parseNtpServer(text: string): NtpServer {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (v6) return { host: v6[1]!, port: v6[2] ? Number(v6[2]) : NTP_PORT };
  const m = /^([^:]+)(?::(\d+))?$/.exec(text);
  if (m) return { host: m[1]!, port: m[2] ? Number(m[2]) : NTP_PORT };
  return { host: text, port: NTP_PORT }; // a bare IPv6 address
}

/**
 * The real query over UDP. T1 and T4 are read from the monotonic clock, so the offset comes out as
 * true UTC minus monotonic time, whatever the wall clock says.
 */
export function udpNtpQuery(
  monoMs: () => number,
  socket: (type: "udp4" | "udp6") => Socket = (type) => createSocket(type),
): NtpQuery {
  return (server, timeoutMs) =>
    new Promise<NtpResult>((resolve, reject) => {
      const sock = socket(isIPv6(server.host) ? "udp6" : "udp4");
      const nonce = randomBytes(8).readBigUInt64BE();
      let t1 = 0;
      let settled = false;
      const finish = (err: Error | null, result?: NtpResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        try {
          sock.close();
        } catch {
          // already closed
        }
        if (err) reject(err);
        else resolve(result!);
      };
      const timer = setTimeout(
        () =>
          finish(
            new VitalgateError(
              "VG_NTP_TIMEOUT",
              `no answer from NTP server ${server.host}:${server.port} within ${timeoutMs} ms`,
            ),
          ),
        timeoutMs,
      );
      sock.on("error", (err) =>
        finish(
          new VitalgateError("VG_NTP_SOCKET", `NTP server ${server.host}:${server.port}: ${err.message}`, {
            cause: err,
          }),
        ),
      );
      sock.on("message", (msg) => {
        const t4 = monoMs();
        const r = sntpMeasure(msg, nonce, t1, t4);
        // A reply to an earlier request, or one not meant for us: keep waiting for ours.
        if (!r.ok && r.error.code === "NTP_BOGUS_ORIGIN") return;
        if (!r.ok)
          finish(
            Object.assign(
              new VitalgateError("VG_NTP_REJECTED", `NTP server ${server.host}:${server.port}: ${r.error.message}`),
              { ntpCode: r.error.code, kiss: r.error.kiss },
            ),
          );
        else finish(null, { ...r.measurement, at: t4 });
      });
      const failed = (err: Error) =>
        finish(
          new VitalgateError("VG_NTP_SOCKET", `NTP server ${server.host}:${server.port}: ${err.message}`, {
            cause: err,
          }),
        );
      // A connected socket takes datagrams from that server only. A failed name lookup comes to the
      // connect callback (not as an 'error' event), and the socket is then not connected.
      if (!(Number.isInteger(server.port) && server.port > 0 && server.port < 65536))
        return failed(new Error(`port ${server.port} is not a UDP port`));
      sock.connect(server.port, server.host, (...args: unknown[]) => {
        if (args[0] instanceof Error) return failed(args[0]);
        t1 = monoMs();
        try {
          sock.send(encodeSntpRequest(nonce), (err) => {
            if (err) failed(err);
          });
        } catch (err) {
          failed(err as Error);
        }
      });
    });
}

export interface NtpSourceOptions {
  servers: string[];
  pollS: number;
  timeoutMs: number;
  /** Exchanges per server per poll; the one with the least round trip is kept. */
  burst?: number;
}

export interface NtpSourceDeps {
  query: NtpQuery;
  log: Logger;
  monoMs(): number;
}

export class NtpSource implements TimeSource {
  readonly name = "ntp";
  state = "waiting";
  #options: NtpSourceOptions & { burst: number };
  #servers: NtpServer[];
  #deps: NtpSourceDeps;
  #timer: NodeJS.Timeout | null = null;
  #report: ((s: TimeSample) => void) | null = null;
  /** Servers that told us to go away (kiss DENY/RSTR) or to slow down (RATE), until this monotonic ms. */
  #holdUntil = new Map<string, number>();
  #polling: Promise<void> | null = null;
  /** Each server's last failure: a failure is logged as a warning when it changes, not on every poll (a tunnel can last an hour). */
  #lastFailure = new Map<string, string>();

  constructor(options: NtpSourceOptions, deps: NtpSourceDeps) {
    this.#options = { burst: 4, ...options };
    this.#servers = options.servers.map(parseNtpServer);
    this.#deps = deps;
  }

  start(report: (s: TimeSample) => void): void {
    this.#report = report;
    if (this.#servers.length === 0) return;
    const poll = () =>
      void this.poll().catch((err: Error) =>
        this.#deps.log.error(
          { code: "VG_TIME_SOURCE_BUG", source: this.name, err: err.message },
          "time source poll failed",
        ),
      );
    poll();
    this.#timer = setInterval(poll, this.#options.pollS * 1000);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#report = null;
    await this.#polling;
  }

  /** One poll of every server; resolves when it is done (tests call it directly). */
  poll(): Promise<void> {
    this.#polling ??= this.#poll().finally(() => {
      this.#polling = null;
    });
    return this.#polling;
  }

  async #poll(): Promise<void> {
    const now = this.#deps.monoMs();
    const results = await Promise.all(
      this.#servers.map(async (server) => {
        const key = `${server.host}:${server.port}`;
        if ((this.#holdUntil.get(key) ?? 0) > now) return { server: key, error: "held off (kiss-o'-death)" };
        const burst: NtpResult[] = [];
        let lastError: VitalgateError | undefined;
        for (let i = 0; i < this.#options.burst; i++) {
          try {
            burst.push(await this.#deps.query(server, this.#options.timeoutMs));
          } catch (err) {
            lastError = err as VitalgateError;
            const kiss = (err as { kiss?: string }).kiss;
            if (kiss) {
              // RFC 5905 §7.4: DENY and RSTR: stop; RATE: reduce the rate. Either way, not this poll.
              this.#holdUntil.set(key, now + (kiss === "RATE" ? 4 : 64) * this.#options.pollS * 1000);
              break;
            }
            if (lastError.code === "VG_NTP_TIMEOUT" && burst.length === 0) break; // unreachable: don't wait out the burst
          }
        }
        const best = bestOfBurst(burst);
        if (best) {
          if (this.#lastFailure.delete(key))
            this.#deps.log.info({ code: "VG_NTP_OK", server: key }, `NTP server ${key} answers again`);
          return { server: key, result: best };
        }
        const code = lastError?.code ?? "VG_NTP_FAILED";
        const level = this.#lastFailure.get(key) === code ? "debug" : "warn";
        this.#lastFailure.set(key, code);
        this.#deps.log[level](
          { code, server: key, ntpCode: (lastError as { ntpCode?: string } | undefined)?.ntpCode },
          lastError?.message ?? `NTP server ${key} gave no usable answer`,
        );
        return { server: key, error: `${lastError?.code ?? "VG_NTP_FAILED"} ${key}` };
      }),
    );
    const good = results.flatMap((r) => ("result" in r && r.result ? [{ ...r.result, server: r.server }] : []));
    if (good.length === 0) {
      this.state =
        results
          .map((r) => ("error" in r ? r.error : ""))
          .filter(Boolean)
          .join("; ") || "no answer";
      return;
    }
    const kept = truechimers(good);
    for (const dropped of good.filter((g) => !kept.includes(g))) {
      this.#deps.log.warn(
        {
          code: "VG_NTP_FALSETICKER",
          server: dropped.server,
          offsetMs: Math.round(dropped.offsetMs - kept[0]!.offsetMs),
        },
        `NTP server ${dropped.server} disagrees with the others: ignored this poll`,
      );
    }
    const best = kept.reduce((a, b) => (b.uncMs < a.uncMs ? b : a));
    this.state = `ok (${best.server}, stratum ${best.stratum}, delay ${best.delayMs.toFixed(1)} ms)`;
    this.#report?.({ offsetMs: best.offsetMs, uncMs: best.uncMs, at: best.at });
  }
}
