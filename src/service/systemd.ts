// The gateway as a systemd service (Type=notify, WatchdogSec=; systemd/vitalgate.service): READY=1
// once it has started (store open, listeners up), WATCHDOG=1 while its event loop is healthy,
// STOPPING=1 when it begins to stop. The messages are sd_notify(3)'s datagrams on $NOTIFY_SOCKET;
// Node has no AF_UNIX datagram sockets, so systemd-notify(1) sends each one (decision 0016).
// Outside systemd ($NOTIFY_SOCKET unset) all of this does nothing.
import { execFile } from "node:child_process";
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { Logger } from "pino";

/** Sends one sd_notify message (`READY=1`, …); resolves when it was handed to the service manager. */
export type Notify = (assignments: string[]) => Promise<void>;

export interface ServiceManager {
  /** The gateway has started: READY=1. */
  ready(status: string): Promise<void>;
  /** The gateway begins to stop: STOPPING=1, and no more watchdog pings. */
  stopping(): Promise<void>;
}

export interface ServiceOptions {
  env: Record<string, string | undefined>;
  log: Logger;
  /** Default: systemd-notify(1). */
  notify?: Notify;
  /** The process's pid, compared with $WATCHDOG_PID. */
  pid?: number;
}

/** How long systemd-notify may take (it waits until systemd has read the message) before it is given up. */
const NOTIFY_TIMEOUT_MS = 5000;

/**
 * systemd-notify(1) without --no-block: it sends the message, then waits (sd_notify_barrier) until
 * systemd has read it, so systemd can still see which unit the (still running) sender belongs to.
 * That is what makes NotifyAccess=all reliable on systemd 252 for a child's message.
 */
export const systemdNotify: Notify = (assignments) =>
  new Promise((resolve, reject) => {
    execFile("systemd-notify", assignments, { timeout: NOTIFY_TIMEOUT_MS }, (err) => (err ? reject(err) : resolve()));
  });

/**
 * The watchdog's interval, from $WATCHDOG_USEC (set by systemd from WatchdogSec=), or undefined when
 * there is no watchdog for this process ($WATCHDOG_PID names another one, as sd_watchdog_enabled(3)).
 */
export function watchdogMs(env: Record<string, string | undefined>, pid: number): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!(usec > 0)) return undefined;
  if (env.WATCHDOG_PID !== undefined && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return usec / 1000;
}

/**
 * Starts talking to systemd when $NOTIFY_SOCKET is set. With a watchdog, pings every quarter of its
 * interval while the event loop is healthy: a loop that is blocked sends nothing (its timer cannot
 * fire), and one whose longest delay since the last ping exceeded half the interval (starved, or
 * stalled then recovered) skips the ping; systemd restarts a gateway that missed a whole interval.
 * The store commits on the loop (better-sqlite3 is synchronous, group commits run from setImmediate),
 * so a wedged store is a wedged loop and is caught the same way.
 */
export function systemdService(o: ServiceOptions): ServiceManager {
  const notify = o.notify ?? systemdNotify;
  const socket = o.env.NOTIFY_SOCKET;
  const send = (assignments: string[]): Promise<void> =>
    notify(assignments).catch((err: Error) =>
      o.log.warn({ code: "VG_SD_NOTIFY_FAILED", err: err.message, what: assignments[0] }, "could not notify systemd"),
    );
  if (!socket) return { ready: async () => undefined, stopping: async () => undefined };

  const intervalMs = watchdogMs(o.env, o.pid ?? process.pid);
  let timer: NodeJS.Timeout | undefined;
  let delays: ReturnType<typeof monitorEventLoopDelay> | undefined;
  if (intervalMs !== undefined) {
    const boundMs = intervalMs / 2;
    // Sampled every 100 ms (or a fifth of the ping period, if shorter): the loop's longest delay.
    delays = monitorEventLoopDelay({ resolution: Math.max(10, Math.min(100, Math.floor(intervalMs / 20))) });
    delays.enable();
    let pinging = false;
    let unhealthy = false;
    const periodMs = intervalMs / 4;
    let lastTick = performance.now();
    timer = setInterval(() => {
      // This tick's own lateness too: the histogram's timer may not have fired yet after a long block.
      const now = performance.now();
      const worstMs = Math.max(delays!.max / 1e6, now - lastTick - periodMs);
      lastTick = now;
      delays!.reset();
      if (worstMs > boundMs) {
        if (!unhealthy)
          o.log.warn(
            { code: "VG_EVENT_LOOP_STALLED", worstMs: Math.round(worstMs), boundMs },
            "the event loop stalled: no watchdog ping",
          );
        unhealthy = true;
        return;
      }
      if (unhealthy) o.log.info("the event loop is healthy again: watchdog pings resume");
      unhealthy = false;
      // A ping still under way (systemd slow to read it) is not doubled.
      if (pinging) return;
      pinging = true;
      void send(["WATCHDOG=1"]).finally(() => (pinging = false));
    }, periodMs);
    timer.unref();
  }
  return {
    ready: (status) => send(["READY=1", `STATUS=${status}`]),
    stopping: () => {
      clearInterval(timer);
      delays?.disable();
      return send(["STOPPING=1", "STATUS=stopping"]);
    },
  };
}
