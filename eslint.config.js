// Lint rules: typescript-eslint's recommended set, plus the layering rule of DESIGN.md §2:
// protocols/ are pure codecs and import nothing from the gateway.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", ".tools/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "off",
    },
  },
  {
    files: ["protocols/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [
          { group: ["**/src/**", "**/drivers/**"], message: "protocols/ are pure: no gateway imports." },
          { group: ["node:net", "node:fs", "node:dgram", "node:child_process", "pino", "better-sqlite3", "mqtt"], message: "protocols/ do no I/O." },
        ],
      }],
    },
  },
);
