// The `ecg12` event body (DESIGN.md §3) and the normalized ECG (protocols/ecg) it carries, both ways:
// an ECG cart's driver makes the body from a decoded file; the web page's drawing (and anything else
// that reads a stored ECG) turns it back into the ECG. The leads travel compact
// (protocols/ecg/compact-leads.ts, docs/protocol.md "Lead encoding").
import { decodeLeads, encodeLeads, type CompactLead, type IntLead } from "../../protocols/ecg/compact-leads.ts";
import type { Ecg12, EcgLead } from "../../protocols/ecg/index.ts";
import type { Ecg12Body } from "./schemas.ts";

/**
 * A lead's samples as int16, with µV per unit. Derived leads can hold half units ((I+II)/2): those
 * are doubled, at half the µV per unit. Values beyond int16 are clamped.
 */
export function intLead(lead: EcgLead): IntLead {
  const halves = Array.prototype.some.call(lead.samples, (v: number) => !Number.isInteger(v));
  const factor = halves ? 2 : 1;
  const samples = new Int16Array(lead.samples.length);
  for (let i = 0; i < samples.length; i++)
    samples[i] = Math.max(-32768, Math.min(32767, Math.round((lead.samples[i] as number) * factor)));
  return { name: lead.name, samples, uvPerUnit: lead.uvPerUnit / factor, ...(lead.derived ? { derived: true } : {}) };
}

/** The ecg12 event body for a decoded ECG, its leads compact; the core adds `original`. */
export function ecg12Body(ecg: Ecg12): Omit<Ecg12Body, "original"> {
  return {
    format: ecg.format,
    formatVersion: ecg.formatVersion,
    acquiredAt: ecg.acquiredAt,
    fs: ecg.fs,
    durationS: ecg.durationS,
    leads: encodeLeads(ecg.leads.map(intLead)),
    measurements: ecg.measurements,
    statements: ecg.statements,
    patient: ecg.patient,
    device: ecg.device,
    warnings: ecg.warnings.length > 0 ? ecg.warnings : undefined,
  };
}

/** A lead as events stored before the compact encoding carry it: int16 little-endian samples in base64. */
interface Base64Lead {
  name: string;
  samples: string;
  uvPerUnit: number;
  derived?: boolean;
}

/**
 * The other way: an ecg12 event body as stored and sent back into the normalized ECG, to draw it.
 * Leads come back as int16 samples with their µV per unit, as they travelled: compact (this
 * version's), or base64 samples (an event stored by an earlier version); an event that travels
 * without its leads (too large for one message) has none.
 */
export function ecg12FromBody(body: Record<string, unknown>): Ecg12 {
  const wire = (body.leads ?? []) as (CompactLead | Base64Lead)[];
  const decoded = decodeLeads(wire.filter((l): l is CompactLead => "data" in l));
  const leads = wire.map((l): EcgLead => {
    let samples: Int16Array;
    if ("data" in l) samples = decoded.get(l.name)!;
    else {
      const bytes = Buffer.from(l.samples, "base64");
      samples = new Int16Array(bytes.length >> 1);
      for (let i = 0; i < samples.length; i++) samples[i] = bytes.readInt16LE(i * 2);
    }
    return { name: l.name, samples, uvPerUnit: l.uvPerUnit, ...(l.derived ? { derived: true } : {}) };
  });
  return { ...(body as unknown as Ecg12), leads, warnings: (body.warnings as Ecg12["warnings"] | undefined) ?? [] };
}
