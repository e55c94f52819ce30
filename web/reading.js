// What a cardiologist's reading says, for the colour it is shown in (issue 13 item 10): only a reading
// that calls a STEMI is alarm red. The conclusion is free text from the center: "Anterior STEMI" is
// one; "NSTEMI", "No STEMI", "non-STEMI", "STEMI ruled out", "排除STEMI", "非 STEMI", "未见STEMI" are
// not. A negation counts within its clause (up to a full stop, comma or semicolon): "No prior MI.
// Acute anterior STEMI" is a STEMI.
const CLAUSE = "[^.;,，。；、]*";
const NEGATED_BEFORE = new RegExp(
  `(?:\\b(?:no|not|non|without|negative for|rule[sd]? out|excluded?)\\b|非|无|未见|不是|排除|否认|不考虑)${CLAUSE}STEMI`,
  "i",
);
const NEGATED_AFTER = new RegExp(
  `STEMI${CLAUSE}(?:\\b(?:ruled out|excluded|unlikely|negative)\\b|已排除|排除|除外|不考虑|可能性小)`,
  "i",
);

/** True when the conclusion calls a STEMI: shown in alarm red. */
export function callsStemi(conclusion) {
  const text = String(conclusion ?? "");
  return /STEMI/i.test(text) && !/NSTEMI/i.test(text) && !NEGATED_BEFORE.test(text) && !NEGATED_AFTER.test(text);
}
