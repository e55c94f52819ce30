// The time sources on their own: what chrony and timesyncd say, parsed; the system clock source
// believing them or not; and a real SNTP exchange over UDP on loopback with a tiny server.
import { createSocket, type Socket } from "node:dgram";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir, uptime } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/load.ts";
import { decodeNtpHeader, encodeNtpHeader, unixMsToNtp } from "../protocols/sntp/index.ts";
import { monotonicSinceBoot, readBootId, systemBoot } from "../src/time/boot.ts";
import { createTimeService } from "../src/time/index.ts";
import { NtpSource, parseNtpServer, udpNtpQuery } from "../src/time/ntp.ts";
import { detectPps, listPpsDevices } from "../src/time/pps.ts";
import type { TimeSample } from "../src/time/service.ts";
import { SystemClockSource, parseChronyTracking, parseTimedatectlShow, type Exec } from "../src/time/system.ts";
import { capturedLog, manualClocks } from "./support/time.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

// Outputs composed by the project in the layout chronyc(1) and timedatectl(1) document; the values
// are invented.
const CHRONY_SYNCED = `Reference ID    : C0A80001 (ntp.ecg-center.example.org)
Stratum         : 3
Ref time (UTC)  : Mon Nov 23 15:58:27 2026
System time     : 0.000021475 seconds slow of NTP time
Last offset     : +0.000012070 seconds
RMS offset      : 0.000040221 seconds
Frequency       : 9.613 ppm slow
Residual freq   : +0.001 ppm
Skew            : 0.027 ppm
Root delay      : 0.027461732 seconds
Root dispersion : 0.001232456 seconds
Update interval : 1039.3 seconds
Leap status     : Normal
`;
const CHRONY_STARTING = `Reference ID    : 00000000 ()
Stratum         : 0
Ref time (UTC)  : Thu Jan 01 00:00:00 1970
System time     : 0.000000000 seconds fast of NTP time
Last offset     : +0.000000000 seconds
RMS offset      : 0.000000000 seconds
Frequency       : 0.000 ppm slow
Residual freq   : +0.000 ppm
Skew            : 0.000 ppm
Root delay      : 1.000000000 seconds
Root dispersion : 1.000000000 seconds
Update interval : 0.0 seconds
Leap status     : Not synchronised
`;
const CHRONY_LOCAL = CHRONY_SYNCED.replace("C0A80001 (ntp.ecg-center.example.org)", "7F7F0101 ()").replace(
  "Stratum         : 3",
  "Stratum         : 10",
);
const TIMEDATECTL = (synced: boolean, ntp = true) => `Timezone=Asia/Shanghai
LocalRTC=no
CanNTP=yes
NTP=${ntp ? "yes" : "no"}
NTPSynchronized=${synced ? "yes" : "no"}
TimeUSec=Mon 2026-11-23 23:58:27 CST
RTCTimeUSec=Mon 2026-11-23 23:58:27 CST
`;

describe("what the operating system says", () => {
  it("reads chrony's tracking: synchronized, its correction and its error bound", () => {
    const r = parseChronyTracking(CHRONY_SYNCED)!;
    expect(r).toMatchObject({ via: "chrony", synchronized: true, reference: "ntp.ecg-center.example.org" });
    // "slow": true time is ahead of the system clock.
    expect(r.correctionMs).toBeCloseTo(0.021475, 6);
    // |offset| + root dispersion + root delay / 2
    expect(r.uncMs).toBeCloseTo(0.021475 + 1.232456 + 27.461732 / 2, 6);
    expect(parseChronyTracking(CHRONY_SYNCED.replace("slow of NTP", "fast of NTP"))!.correctionMs).toBeCloseTo(
      -0.021475,
      6,
    );
  });

  it("takes chrony at its word when it is not synchronized, or follows only its own local clock", () => {
    expect(parseChronyTracking(CHRONY_STARTING)).toMatchObject({
      synchronized: false,
      reason: "leap status: Not synchronised",
    });
    expect(parseChronyTracking(CHRONY_LOCAL)).toMatchObject({
      synchronized: false,
      reason: expect.stringContaining("local"),
    });
    expect(parseChronyTracking("506 Cannot talk to daemon\n")).toBeUndefined();
  });

  it("reads timedatectl show", () => {
    expect(parseTimedatectlShow(TIMEDATECTL(true))).toEqual({ via: "timesyncd", synchronized: true });
    expect(parseTimedatectlShow(TIMEDATECTL(false))).toMatchObject({
      synchronized: false,
      reason: "not synchronized yet",
    });
    expect(parseTimedatectlShow(TIMEDATECTL(false, false))).toMatchObject({
      synchronized: false,
      reason: expect.stringContaining("set-ntp"),
    });
    expect(
      parseTimedatectlShow("System has not been booted with systemd as init system (PID 1). Can't operate.\n"),
    ).toBeUndefined();
  });
});

describe("the system clock source", () => {
  function source(outputs: Partial<Record<"chronyc" | "timedatectl", string>>, trust: "auto" | "always" = "auto") {
    const clocks = manualClocks();
    clocks.wallError = 1500;
    const samples: TimeSample[] = [];
    const calls: string[] = [];
    const exec: Exec = async (file) => {
      calls.push(file);
      const out = outputs[file as "chronyc" | "timedatectl"];
      if (out === undefined) throw Object.assign(new Error(`spawn ${file} ENOENT`), { code: "ENOENT" });
      return out;
    };
    const src = new SystemClockSource(
      { trust, pollS: 86_400 },
      { exec, wallMs: clocks.wallMs, monoMs: clocks.monoMs, log: capturedLog().log },
    );
    src.start((s) => samples.push(s));
    cleanup.push(() => src.stop());
    return { src, samples, calls, clocks };
  }

  it("believes a synchronized chrony, corrected by what chrony says", async () => {
    const { src, samples, clocks } = source({ chronyc: CHRONY_SYNCED });
    await src.poll();
    expect(samples.at(-1)!.offsetMs + clocks.mono - clocks.wallMs()).toBeCloseTo(0.021475, 3);
    expect(src.state).toBe("ok (chrony, ntp.ecg-center.example.org)");
  });

  it("falls back to timesyncd, assumes its bound, and reports nothing while neither is synchronized", async () => {
    const synced = source({ timedatectl: TIMEDATECTL(true) });
    await synced.src.poll();
    expect(synced.samples.at(-1)).toMatchObject({ uncMs: 250 });
    expect(synced.calls).toContain("chronyc"); // asked first, not installed
    expect(synced.calls.at(-1)).toBe("timedatectl");
    const unsynced = source({ chronyc: CHRONY_STARTING, timedatectl: TIMEDATECTL(false) });
    await unsynced.src.poll();
    expect(unsynced.samples).toEqual([]);
    expect(unsynced.src.state).toBe("chrony: not synchronized (leap status: Not synchronised)");
    const none = source({});
    await none.src.poll();
    expect(none.samples).toEqual([]);
    expect(none.src.state).toBe("no chrony or timesyncd to ask");
  });

  it("with trust always, reports the wall clock as it is, asking nobody", async () => {
    const { src, samples, calls, clocks } = source({}, "always");
    await src.poll();
    expect(calls).toEqual([]);
    expect(samples.at(-1)).toEqual({ offsetMs: clocks.wallMs() - clocks.mono, uncMs: 1000, at: clocks.mono });
  });
});

describe("SNTP over UDP", () => {
  /** A tiny NTP server on loopback whose clock is the system clock plus `aheadMs`; answers after `holdMs`. */
  async function ntpServer(aheadMs: number, holdMs: number, kiss?: string): Promise<{ port: number; socket: Socket }> {
    const socket = createSocket("udp4");
    socket.on("message", (msg, rinfo) => {
      const received = Date.now() + aheadMs;
      const request = decodeNtpHeader(msg);
      if (!request.ok) return;
      setTimeout(() => {
        const reply = encodeNtpHeader({
          leap: 0,
          version: 4,
          mode: 4,
          stratum: kiss ? 0 : 1,
          poll: request.header.poll,
          precision: -20,
          rootDelayMs: 0,
          rootDispersionMs: 0.5,
          refId: new TextEncoder().encode(kiss ?? "GPS "),
          reference: unixMsToNtp(received - 1000),
          origin: request.header.transmit,
          receive: unixMsToNtp(received),
          transmit: unixMsToNtp(Date.now() + aheadMs),
        });
        socket.send(reply, rinfo.port, rinfo.address);
      }, holdMs);
    });
    await new Promise<void>((r) => socket.bind(0, "127.0.0.1", r));
    cleanup.push(() => new Promise<void>((r) => socket.close(() => r())));
    return { port: socket.address().port, socket };
  }

  it("measures a server 12.345 s ahead to within its bound, the server's own holding time left out of the round trip", async () => {
    const server = await ntpServer(12_345, 20);
    const mono = () => performance.now();
    const query = udpNtpQuery(mono);
    const r = await query({ host: "127.0.0.1", port: server.port }, 2000);
    // The offset is true UTC (the server's) minus the monotonic clock.
    const expected = Date.now() + 12_345 - performance.now();
    expect(Math.abs(r.offsetMs - expected)).toBeLessThanOrEqual(r.uncMs + 1);
    expect(r.delayMs).toBeGreaterThanOrEqual(0);
    expect(r.delayMs).toBeLessThan(15); // loopback: the 20 ms in the server are not path delay
    expect(r.uncMs).toBeLessThan(10);
    expect(r).toMatchObject({ stratum: 1, refId: "GPS" });
  });

  it("times out on a server that never answers, and reads a kiss-o'-death", async () => {
    const silent = createSocket("udp4");
    await new Promise<void>((r) => silent.bind(0, "127.0.0.1", r));
    cleanup.push(() => new Promise<void>((r) => silent.close(() => r())));
    const query = udpNtpQuery(() => performance.now());
    await expect(query({ host: "127.0.0.1", port: silent.address().port }, 150)).rejects.toMatchObject({
      code: "VG_NTP_TIMEOUT",
      next: "retry",
    });
    const denying = await ntpServer(0, 0, "DENY");
    await expect(query({ host: "127.0.0.1", port: denying.port }, 2000)).rejects.toMatchObject({
      code: "VG_NTP_REJECTED",
      kiss: "DENY",
    });
  });

  it("an NTP source over real UDP reports a sample, and leaves a denying server alone", async () => {
    const good = await ntpServer(-2500, 0);
    const denying = await ntpServer(0, 0, "DENY");
    const mono = () => performance.now();
    const { log, lines } = capturedLog();
    const ntp = new NtpSource(
      { servers: [`127.0.0.1:${good.port}`, `127.0.0.1:${denying.port}`], pollS: 86_400, timeoutMs: 1000, burst: 2 },
      { query: udpNtpQuery(mono), log, monoMs: mono },
    );
    const samples: TimeSample[] = [];
    ntp.start((s) => samples.push(s));
    cleanup.push(() => ntp.stop());
    await ntp.poll();
    expect(samples.length).toBeGreaterThanOrEqual(1);
    expect(Math.abs(samples.at(-1)!.offsetMs - (Date.now() - 2500 - performance.now()))).toBeLessThanOrEqual(
      samples.at(-1)!.uncMs + 1,
    );
    expect(lines.some((l) => l.code === "VG_NTP_REJECTED" && l.ntpCode === "NTP_KISS")).toBe(true);
    lines.length = 0;
    await ntp.poll();
    expect(lines.some((l) => l.code === "VG_NTP_REJECTED")).toBe(false); // held off
  });

  it("reports a server name that does not resolve as an error, not a crash", async () => {
    const query = udpNtpQuery(() => performance.now());
    const err = await query({ host: "nonexistent.invalid", port: 123 }, 3000).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: expect.stringMatching(/^VG_NTP_(SOCKET|TIMEOUT)$/), next: "retry" });
    await expect(query({ host: "127.0.0.1", port: 0 }, 3000)).rejects.toMatchObject({ code: "VG_NTP_SOCKET" });
  });

  it("the configuration takes host names, addresses and ports, and refuses what is not one", () => {
    const load = (servers: string) =>
      loadConfig({ text: `gateway: { id: a }\ntime: { ntpServers: ${servers} }\n`, drivers: () => undefined });
    const ok = load('[ntp.ecg-center.example.org, "10.0.0.1:1123", "[fd00::1]:123"]');
    expect(ok.ok && ok.config.time.ntpServers).toEqual([
      "ntp.ecg-center.example.org",
      "10.0.0.1:1123",
      "[fd00::1]:123",
    ]);
    const bad = load('["ntp.example.org:70000", "http://ntp.example.org"]');
    expect(bad.ok ? [] : bad.errors.map((e) => `${e.path}: ${e.message}`)).toEqual([
      "time.ntpServers[0]: the port must be 1-65535",
      'time.ntpServers[1]: must be a host name or address, optionally with :port (e.g. "ntp.ecg-center.example.org")',
    ]);
  });

  it("parses server names with and without ports", () => {
    expect(parseNtpServer("ntp.example.org")).toEqual({ host: "ntp.example.org", port: 123 });
    expect(parseNtpServer("10.0.0.1:1123")).toEqual({ host: "10.0.0.1", port: 1123 });
    expect(parseNtpServer("[fd00::1]:123")).toEqual({ host: "fd00::1", port: 123 });
    expect(parseNtpServer("fd00::1")).toEqual({ host: "fd00::1", port: 123 });
  });
});

// A fake /sys and /dev shaped like a box with a GPS receiver's PPS on a GPIO pin (pps1, with a udev
// alias), a serial port's DCD under the PPS line discipline (pps0), and a /dev node without sysfs.
function fakePpsTree(opts: { empty?: boolean } = {}) {
  const root = mkdtempSync(join(tmpdir(), "vg-pps-"));
  const sys = join(root, "sys");
  const dev = join(root, "dev");
  mkdirSync(join(sys, "class"), { recursive: true });
  mkdirSync(dev, { recursive: true });
  writeFileSync(join(dev, "ttyS0"), "");
  if (opts.empty) return { sys, dev };
  const pps = (n: number, attrs: Record<string, string>) => {
    mkdirSync(join(sys, "class/pps", `pps${n}`), { recursive: true });
    for (const [k, v] of Object.entries(attrs)) writeFileSync(join(sys, "class/pps", `pps${n}`, k), `${v}\n`);
    writeFileSync(join(dev, `pps${n}`), "");
  };
  pps(1, { name: "pps-gpio.-1", path: "", assert: "1795420800.000000123#42" });
  pps(0, { name: "serial0", path: "/dev/ttyS0" });
  writeFileSync(join(dev, "pps10"), "");
  writeFileSync(join(dev, "ppsfoo"), "");
  symlinkSync("pps1", join(dev, "gps0pps"));
  return { sys, dev };
}

describe("PPS sources", () => {
  it("lists the kernel's PPS devices from sysfs and /dev, with what drives them", () => {
    const roots = fakePpsTree();
    expect(listPpsDevices(roots)).toEqual([
      { device: "/dev/pps0", name: "serial0", path: "/dev/ttyS0" },
      { device: "/dev/pps1", name: "pps-gpio.-1", path: undefined },
      { device: "/dev/pps10" },
    ]);
    expect(listPpsDevices(fakePpsTree({ empty: true }))).toEqual([]);
    expect(listPpsDevices({ sys: "/nonexistent/sys", dev: "/nonexistent/dev" })).toEqual([]);
  });

  it("says whether the configured device, a udev alias included, is there; with none configured, whether any is", () => {
    const roots = fakePpsTree();
    expect(detectPps(undefined, roots)).toMatchObject({ present: true, device: null });
    expect(detectPps("/dev/gps0pps", roots)).toMatchObject({ present: true, device: "/dev/gps0pps" });
    expect(detectPps("/dev/pps0", roots).present).toBe(true);
    expect(detectPps("/dev/pps7", roots).present).toBe(false);
    expect(detectPps("/dev/ttyS0", roots).present).toBe(false); // a serial port is not a PPS device
    expect(detectPps(undefined, fakePpsTree({ empty: true }))).toEqual({ present: false, device: null, devices: [] });
  });

  it("the time service reports them in its state and logs what it found, or what is missing", () => {
    const load = (time: string) => {
      const r = loadConfig({ text: `gateway: { id: a }\ntime: ${time}\n`, drivers: () => undefined });
      if (!r.ok) throw new Error(JSON.stringify(r.errors));
      return r.config.time;
    };
    const clocks = manualClocks();
    const found = capturedLog("info");
    const svc = createTimeService(load("{ ppsDevice: /dev/gps0pps }"), {
      log: found.log,
      monoMs: clocks.monoMs,
      wallMs: clocks.wallMs,
      roots: fakePpsTree(),
      exec: async () => "",
    });
    svc.start();
    cleanup.push(() => svc.stop());
    expect(svc.state().pps).toEqual({
      present: true,
      device: "/dev/gps0pps",
      used: false,
      devices: [
        expect.objectContaining({ device: "/dev/pps0" }),
        expect.objectContaining({ device: "/dev/pps1" }),
        { device: "/dev/pps10" },
      ],
    });
    expect(found.lines.find((l) => l.code === "VG_TIME_PPS_PRESENT")).toMatchObject({
      found: ["/dev/pps0 (serial0 on /dev/ttyS0)", "/dev/pps1 (pps-gpio.-1)", "/dev/pps10"],
    });

    const roots = fakePpsTree({ empty: true });
    const missing = capturedLog("info");
    const svc2 = createTimeService(load("{ ppsDevice: /dev/pps0, trustSystemClock: never }"), {
      log: missing.log,
      monoMs: clocks.monoMs,
      wallMs: clocks.wallMs,
      roots,
    });
    svc2.start();
    cleanup.push(() => svc2.stop());
    expect(svc2.state().pps).toMatchObject({ present: false, device: "/dev/pps0", devices: [] });
    expect(missing.codes()).toContain("VG_TIME_PPS_MISSING");
    // Plugged in later: seen at the next look (at most a minute on), and logged.
    mkdirSync(join(roots.sys, "class/pps/pps0"), { recursive: true });
    writeFileSync(join(roots.sys, "class/pps/pps0/name"), "serial0\n");
    writeFileSync(join(roots.dev, "pps0"), "");
    expect(svc2.state().pps.present).toBe(false);
    clocks.advance(60_000);
    expect(svc2.state().pps.present).toBe(true);
    expect(missing.codes()).toContain("VG_TIME_PPS_PRESENT");

    expect(load("{ ppsDevice: /dev/pps0 }").ppsDevice).toBe("/dev/pps0");
    const bad = loadConfig({ text: "gateway: { id: a }\ntime: { ppsDevice: pps0 }\n", drivers: () => undefined });
    expect(bad.ok).toBe(false);
  });
});

describe("the boot", () => {
  it("reads the kernel's boot id, and nothing that is not one", () => {
    const dir = mkdtempSync(join(tmpdir(), "vg-boot-"));
    writeFileSync(join(dir, "boot_id"), "39F41A78-D51D-4652-86BF-34780805D3CF\n");
    writeFileSync(join(dir, "junk"), "not a uuid\n");
    expect(readBootId(join(dir, "boot_id"))).toBe("39f41a78-d51d-4652-86bf-34780805d3cf");
    expect(readBootId(join(dir, "junk"))).toBeUndefined();
    expect(readBootId(join(dir, "missing"))).toBeUndefined();
    expect(systemBoot(() => 0, join(dir, "missing"))).toMatchObject({ bootId: expect.any(Function) });
    expect(systemBoot(() => 0, join(dir, "missing")).bootId()).toBeUndefined();
  });

  it.runIf(process.platform === "linux")(
    "counts monotonic time from boot, as /proc/uptime does (less time suspended), the same in every process",
    () => {
      const mono = monotonicSinceBoot();
      expect(Math.abs(mono() - Number(process.hrtime.bigint()) / 1e6)).toBeLessThan(5);
      const boot = systemBoot(mono);
      // /proc/uptime is CLOCK_BOOTTIME in 10 ms steps: the monotonic clock is behind it by the time suspended.
      expect(uptime() * 1000 - mono()).toBeGreaterThan(-50);
      expect(uptime() * 1000 - mono() - boot.suspendedMs()).toBeLessThan(50);
      expect(boot.bootId()).toMatch(/^[0-9a-f-]{36}$/);
    },
  );
});
