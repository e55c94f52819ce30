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
    // The web page: plain ES modules run by the browser (no build step), with the browser's globals.
    files: ["web/**/*.js"],
    languageOptions: {
      sourceType: "module",
      globals: Object.fromEntries(
        [
          "window",
          "document",
          "location",
          "localStorage",
          "fetch",
          "EventSource",
          "URLSearchParams",
          "Node",
          "getComputedStyle",
          "requestAnimationFrame",
          "cancelAnimationFrame",
          "performance",
          "CSS",
          "navigator",
          "AudioContext",
          "setTimeout",
          "clearTimeout",
          "setInterval",
          "clearInterval",
          "console",
        ].map((g) => [g, "readonly"]),
      ),
    },
  },
  {
    files: ["protocols/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["**/src/**", "**/drivers/**"], message: "protocols/ are pure: no gateway imports." },
            {
              group: ["node:net", "node:fs", "node:dgram", "node:child_process", "pino", "better-sqlite3", "mqtt"],
              message: "protocols/ do no I/O.",
            },
          ],
        },
      ],
    },
  },
);
