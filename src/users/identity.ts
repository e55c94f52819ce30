// Who a web user is, and what a password must be (issue 13 item 6, GB/T 22239-2019 level 3,
// 8.1.4.1 身份鉴别: "unique identities, passwords with complexity requirements, changed
// periodically"). Pure functions: the config schema and src/web/auth.ts share them.

/**
 * Latin look-alikes of letters from other scripts, for the skeleton below. A subset of Unicode's
 * confusables.txt (UTS #39, "Unicode Security Mechanisms", §4 confusable detection): the Cyrillic and
 * Greek letters that render as a Latin letter in common fonts, and the digits mistaken for letters.
 * Fullwidth and other compatibility forms need no entry: NFKC folds them first.
 */
const LOOKALIKES: Record<string, string> = {
  // Cyrillic (U+0400 block), lower case after toLowerCase()
  "\u0430": "a",
  "\u0432": "b",
  "\u0435": "e",
  "\u0451": "e",
  "\u043a": "k",
  "\u043c": "m",
  "\u043d": "h",
  "\u043e": "o",
  "\u0440": "p",
  "\u0441": "c",
  "\u0442": "t",
  "\u0443": "y",
  "\u0445": "x",
  "\u0456": "i",
  "\u0457": "i",
  "\u0458": "j",
  "\u0455": "s",
  "\u0501": "d",
  "\u051b": "q",
  "\u051d": "w",
  "\u04bb": "h",
  "\u04cf": "l",
  "\u0491": "r",
  "\u0475": "v",
  // Greek (U+0370 block)
  "\u03b1": "a",
  "\u03b2": "b",
  "\u03b5": "e",
  "\u03b7": "n",
  "\u03b9": "i",
  "\u03ba": "k",
  "\u03bc": "u",
  "\u03bd": "v",
  "\u03bf": "o",
  "\u03c1": "p",
  "\u03c4": "t",
  "\u03c5": "u",
  "\u03c7": "x",
  "\u03b6": "z",
  "\u03f2": "c",
  "\u03f3": "j",
  // Latin letters that pass for others
  "\u0131": "i",
  "\u0269": "i",
  "\u0261": "g",
  "\u01c0": "l",
  // Digits (confusables.txt maps 0 to O and 1 to l)
  "0": "o",
  "1": "l",
};

/** A username as stored and compared: NFKC (fullwidth `ａｄｍｉｎ` is `admin`). */
export function normalizeUsername(name: string): string {
  return name.normalize("NFKC");
}

/**
 * The skeleton of a username (UTS #39 §4, simplified): NFKC, lower case, accents dropped, look-alike
 * letters replaced by their Latin prototype, `rn` read as `m` and `vv` as `w`. Two usernames with the
 * same skeleton are the same identity to a reader: Cyrillic `аdmin` and `admin`, `Admin` and `admin`,
 * `adm1n` and `admin`, `li.na` and `Li.Na` are refused beside each other.
 */
export function usernameSkeleton(name: string): string {
  const folded = normalizeUsername(name).toLowerCase().normalize("NFD").replace(/\p{M}/gu, "");
  let out = "";
  for (const ch of folded) out += LOOKALIKES[ch] ?? ch;
  return out.replace(/[il|]/g, "l").replace(/rn/g, "m").replace(/vv/g, "w");
}

export interface PasswordPolicy {
  minLength: number;
  /** Of four classes: lower-case letters, upper-case letters, digits, everything else (symbols, spaces, Chinese). */
  minClasses: number;
}

/** Why `password` does not meet the policy for `username`, in words; null when it does. */
export function passwordProblem(password: string, username: string, policy: PasswordPolicy): string | null {
  const chars = [...password];
  if (chars.length < policy.minLength) return `must have at least ${policy.minLength} characters`;
  const classes = [/\p{Ll}/u, /\p{Lu}/u, /\p{Nd}/u, /[^\p{Ll}\p{Lu}\p{Nd}]/u].filter((re) => re.test(password)).length;
  if (classes < policy.minClasses)
    return `must mix at least ${policy.minClasses} of: lower-case letters, upper-case letters, digits, other characters`;
  if (username && password.toLowerCase().includes(normalizeUsername(username).toLowerCase()))
    return "must not contain the username";
  return null;
}
