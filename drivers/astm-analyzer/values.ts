// What an analyser's result value (R.4) and abnormal flag (R.7) mean beyond a plain number: the ways
// analysers say "no value", and the marks that qualify a number. As data, each with where it was
// learnt (docs/decisions/0013-astm-analyser-quirks.md).
//
// A "no value" is not a result: a gateway that forwarded "....." as a pO2 would hand the center a
// string where a number belongs, and one that parsed "***" as 0 would invent a measurement. Such a
// result is left out of `results` and listed in the event's `unavailable` with its marker, so the
// center sees that the analyser had nothing, and why when a comment record says.
// A qualified number keeps its number and says how it is qualified (`quality`): "<6.5" is 6.5 with
// `below-limit` (the true value is lower, the analyser's reportable range ends there), never 6.5.

/** How a number is qualified. */
export type ResultQuality = "questionable" | "below-limit" | "above-limit";

/** Values that mean "no value", with their source. Compared after trimming. */
export const NO_VALUE_MARKERS: readonly { pattern: RegExp; what: string; source: string }[] = [
  {
    pattern: /^$/,
    what: "empty",
    source:
      "E1394 R.4 (data or measurement value) holds the measurement; an empty field holds none (unless R.7 flags it: below)",
  },
  {
    pattern: /^\.{2,}$/,
    what: "dots",
    source:
      'Radiometer ABL9 records (../shared/fixtures/real-world/astm/abl9_records_framed.txt): "....." for pO2(A), AaDpO2, a/ApO2 and RI, each followed by the comment "1009: Unable to calculate - missing Baro"',
  },
  {
    pattern: /^\*{2,}$/,
    what: "stars",
    source: 'issue 12: analysers that suppress a result print and send "***" in its place (the i-STAT\'s "star-out")',
  },
  {
    pattern: /^-{2,}$/,
    what: "dashes",
    source: 'issue 12: "---" / "----" for a parameter not measured on this sample',
  },
  { pattern: /^(n\/?a|none|null)$/i, what: "not available", source: "issue 12: text in place of a number" },
];

/** Marks that qualify a number in R.4: a leading < or > (off the reportable range), a ? (doubted). */
const QUALIFIED: readonly { pattern: RegExp; quality: ResultQuality; source: string }[] = [
  {
    pattern: /^<=?\s*([-+]?(?:\d+\.?\d*|\.\d+))$/,
    quality: "below-limit",
    source:
      'E1394 R.7 abnormal flag "<" (below absolute low, off low scale), sent in R.4 before the limit by analysers that report the range they could measure',
  },
  {
    pattern: /^>=?\s*([-+]?(?:\d+\.?\d*|\.\d+))$/,
    quality: "above-limit",
    source: 'E1394 R.7 abnormal flag ">" (above absolute high, off high scale), as in R.4',
  },
  {
    pattern: /^([-+]?(?:\d+\.?\d*|\.\d+))\s*\?$/,
    quality: "questionable",
    source: 'issue 12: a value the analyser doubts (a quality check failed) sent with "?"',
  },
  {
    pattern: /^\?\s*([-+]?(?:\d+\.?\d*|\.\d+))$/,
    quality: "questionable",
    source: 'issue 12: as above, "?" before the number',
  },
];

/** R.7 abnormal flags that qualify the number (E1394 / LIS2-A2 R.7: "<" and ">" off scale). */
const FLAG_QUALITY: Readonly<Record<string, ResultQuality>> = {
  "<": "below-limit",
  ">": "above-limit",
  "?": "questionable",
};

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)$/;

export type ResultValue =
  { absent: true; marker: string } | { absent: false; value: number | string; quality?: ResultQuality };

/** Reads R.4 (as sent) with R.7 (as sent). Text that is neither a number nor a marker stays text. */
export function readResultValue(sent: string | undefined, flag: string | undefined): ResultValue {
  const raw = (sent ?? "").trim();
  // An empty value with a flag is a finding, not a missing value: the Sysmex XN sends its interpretive
  // messages (Anemia, Eosinophilia, Positive_Diff) as results with no value and R.7 "A" (the XN-550
  // capture in ../shared/fixtures/astm).
  if (raw === "" && (flag ?? "").trim() !== "") return { absent: false, value: "" };
  const marker = NO_VALUE_MARKERS.find((m) => m.pattern.test(raw));
  if (marker) return { absent: true, marker: raw === "" ? "(empty)" : raw };
  const byFlag = FLAG_QUALITY[(flag ?? "").trim()];
  if (NUMBER.test(raw))
    return byFlag ? { absent: false, value: Number(raw), quality: byFlag } : { absent: false, value: Number(raw) };
  for (const q of QUALIFIED) {
    const m = q.pattern.exec(raw);
    if (m) return { absent: false, value: Number(m[1]), quality: q.quality };
  }
  return { absent: false, value: raw };
}
