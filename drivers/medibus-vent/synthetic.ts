// What a Dräger ventilator says over MEDIBUS, for the medibus-vent simulator and tests. Pure: the
// simulator (./simulator.ts) moves the bytes and reads the clock.
//
// SYNTHETIC: written by this project from the MEDIBUS layouts (protocols/medibus) and the data codes
// of ./codes.ts; no public capture of a Dräger device exists (../shared/fixtures/README.md), no device
// produced these answers and no patient is in them. Steady adult ventilation: RR 14/min, VT 480 mL,
// MV 6.7 L/min, PEEP 5, Ppeak 22, Pplat 18, Pmean 10 cmH2O (mbar), FiO2 40 %, EtCO2 38 mmHg; settings
// FiO2 40 %, VT 0.480 L, rate 14/min, PEEP 5.0, Ti 1.70 s, Pmax 40; code page 2: VTe 472 mL, VTi
// 485 mL, EIP 18 cmH2O; one alarm ("Paw high", priority 25) that comes and goes every half
// `alarmCycleMs`, none on code page 2.
//
// Like a device it answers nothing before an ICC, echoes commands it has no data for, and forgets the
// link after 10 s without a command. Dräger's own figure is not known here (drivers/medibus-vent,
// "Keep-alive"); 10 s is this simulator's choice, longer than any gap the gateway leaves (2 s).
import { MEDIBUS_CMD, encodeMedibusResponse, parseMedibusMessage } from "../../protocols/medibus/index.ts";

/** Device identification: id number (4), 'name', software revision, ':' MEDIBUS version. */
export const SYNTHETIC_DEVICE_ID = "9999'SimVent'01.00:06.00";
export const SYNTHETIC_MODEL = "SimVent";
/** A device forgets a link that stayed silent this long. */
export const DEVICE_LINK_TIMEOUT_MS = 10_000;

const pad = (s: string, n: number) => s.padStart(n, " ").slice(-n);

/** Measured data, code page 1: code (2) + value (4), blank when not measured (DB: EtCO2 in %). */
export function syntheticMeasured(): string {
  const v: [string, string][] = [
    ["D6", "14"],
    ["88", "480"],
    ["B9", "6.7"],
    ["78", "5"],
    ["7D", "22"],
    ["74", "18"],
    ["73", "10"],
    ["F0", "40"],
    ["E6", "38"],
    ["06", "28.2"],
    ["0B", "9.5"],
    ["DB", ""],
  ];
  return v.map(([code, value]) => code + pad(value, 4)).join("");
}

/** Measured data, code page 2: VTe, VTi (mL), EIP (mbar), and VTspon blank (no spontaneous breaths). */
export function syntheticMeasuredCP2(): string {
  const v: [string, string][] = [
    ["21", "472"],
    ["22", "485"],
    ["23", "18"],
    ["00", ""],
  ];
  return v.map(([code, value]) => code + pad(value, 4)).join("");
}

/** Device settings: code (2) + value (5). */
export function syntheticSettings(): string {
  const v: [string, string][] = [
    ["01", "40"],
    ["04", "0.480"],
    ["09", "14.0"],
    ["0B", "5.0"],
    ["05", "1.70"],
    ["13", "40.0"],
  ];
  return v.map(([code, value]) => code + pad(value, 5)).join("");
}

/** Current alarms, code page 1: priority ('0' + 1..31) + code (2) + phrase (12); "Paw high" in the first half of each cycle. */
export function syntheticAlarms(nowMs: number, cycleMs: number): string {
  const on = Math.floor(nowMs / (cycleMs / 2)) % 2 === 0;
  return on ? String.fromCharCode(0x30 + 25) + "10" + "Paw high".padEnd(12, " ") : "";
}

export interface MedibusDevice {
  /** The answer to one message from the gateway, or undefined (no answer). */
  receive(frame: Uint8Array, nowMs: number): { reply?: Uint8Array; command?: string };
  /** The line went away (an unplugged cable, a closed connection): the link is gone. */
  reset(): void;
  readonly initialised: boolean;
}

const NAMES: Record<number, string> = {
  [MEDIBUS_CMD.ICC]: "ICC",
  [MEDIBUS_CMD.NOP]: "NOP",
  [MEDIBUS_CMD.STOP]: "STOP",
  [MEDIBUS_CMD.DEVICE_ID]: "device id",
  [MEDIBUS_CMD.MEASURED_DATA_CP1]: "measured data",
  [MEDIBUS_CMD.DEVICE_SETTINGS]: "settings",
  [MEDIBUS_CMD.CURRENT_ALARMS_CP1]: "alarms",
  [MEDIBUS_CMD.MEASURED_DATA_CP2]: "measured data CP2",
  [MEDIBUS_CMD.CURRENT_ALARMS_CP2]: "alarms CP2",
};

/** A synthetic MEDIBUS ventilator: its link state and its answers. */
export function medibusDevice(o: { alarmCycleMs?: number } = {}): MedibusDevice {
  const cycleMs = o.alarmCycleMs ?? 60_000;
  let initialised = false;
  let lastHeardMs = -Infinity;
  return {
    get initialised() {
      return initialised;
    },
    reset() {
      initialised = false;
    },
    receive(frame, nowMs) {
      const p = parseMedibusMessage(frame);
      if (!p.ok || p.message.kind !== "command") return {}; // a corrupt command or a response: nothing to say
      const code = p.message.code;
      const command = NAMES[code] ?? `0x${code.toString(16)}`;
      if (nowMs - lastHeardMs > DEVICE_LINK_TIMEOUT_MS) initialised = false;
      lastHeardMs = nowMs;
      if (code === MEDIBUS_CMD.ICC) {
        initialised = true;
        return { reply: encodeMedibusResponse(code), command };
      }
      if (!initialised) return { command }; // no answer before ICC
      switch (code) {
        case MEDIBUS_CMD.STOP:
          initialised = false;
          return { reply: encodeMedibusResponse(code), command };
        case MEDIBUS_CMD.DEVICE_ID:
          return { reply: encodeMedibusResponse(code, SYNTHETIC_DEVICE_ID), command };
        case MEDIBUS_CMD.MEASURED_DATA_CP1:
          return { reply: encodeMedibusResponse(code, syntheticMeasured()), command };
        case MEDIBUS_CMD.DEVICE_SETTINGS:
          return { reply: encodeMedibusResponse(code, syntheticSettings()), command };
        case MEDIBUS_CMD.CURRENT_ALARMS_CP1:
          return { reply: encodeMedibusResponse(code, syntheticAlarms(nowMs, cycleMs)), command };
        case MEDIBUS_CMD.MEASURED_DATA_CP2:
          return { reply: encodeMedibusResponse(code, syntheticMeasuredCP2()), command };
        default:
          return { reply: encodeMedibusResponse(code), command }; // NOP, alarms CP2 (none), and what it has no data for: echoed
      }
    },
  };
}
