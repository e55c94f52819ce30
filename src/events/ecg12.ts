// The `ecg12` event body (DESIGN.md §3) and the normalized ECG (protocols/ecg) it carries, both ways:
// an ECG cart's driver makes the body from a decoded file; the web page's drawing (and anything else
// that reads a stored ECG) turns it back into the ECG.
import type { Ecg12, EcgLead } from "../../protocols/ecg/index.ts";

/** A lead as it travels: int16 little-endian samples in base64, with µV per unit. */
export interface LeadOnTheWire {
  name: string;
  samples: string;
  uvPerUnit: number;
  derived?: boolean;
}

/** A lead as it travels. Derived leads can hold half units ((I+II)/2): those are doubled, at half the µV per unit. */
export function leadOnTheWire(lead: EcgLead): LeadOnTheWire {
  const halves = Array.prototype.some.call(lead.samples, (v: number) => !Number.isInteger(v));
  const factor = halves ? 2 : 1;
  const out = new Int16Array(lead.samples.length);
  for (let i = 0; i < out.length; i++)
    out[i] = Math.max(-32768, Math.min(32767, Math.round((lead.samples[i] as number) * factor)));
  return {
    name: lead.name,
    samples: Buffer.from(out.buffer, out.byteOffset, out.byteLength).toString("base64"),
    uvPerUnit: lead.uvPerUnit / factor,
    ...(lead.derived ? { derived: true } : {}),
  };
}

/** The ecg12 event body for a decoded ECG; the core adds `original`. */
export function ecg12Body(ecg: Ecg12): Record<string, unknown> {
  return {
    format: ecg.format,
    formatVersion: ecg.formatVersion,
    acquiredAt: ecg.acquiredAt,
    fs: ecg.fs,
    durationS: ecg.durationS,
    leads: ecg.leads.map(leadOnTheWire),
    measurements: ecg.measurements,
    statements: ecg.statements,
    patient: ecg.patient,
    device: ecg.device,
    warnings: ecg.warnings.length > 0 ? ecg.warnings : undefined,
  };
}

/**
 * The other way: an ecg12 event body as stored and sent back into the normalized ECG, to draw it.
 * Leads come back as int16 samples with their µV per unit, as they travelled.
 */
export function ecg12FromBody(body: Record<string, unknown>): Ecg12 {
  const leads = (body.leads as LeadOnTheWire[]).map((l): EcgLead => {
    const bytes = Buffer.from(l.samples, "base64");
    const samples = new Int16Array(bytes.length >> 1);
    for (let i = 0; i < samples.length; i++) samples[i] = bytes.readInt16LE(i * 2);
    return { name: l.name, samples, uvPerUnit: l.uvPerUnit, ...(l.derived ? { derived: true } : {}) };
  });
  return { ...(body as unknown as Ecg12), leads, warnings: (body.warnings as Ecg12["warnings"] | undefined) ?? [] };
}
