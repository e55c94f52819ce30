// Lint rules: typescript-eslint's recommended set, plus the layering rules of DESIGN.md §2:
// protocols/ are pure codecs and import nothing from the gateway; a driver is its own folder and
// imports no other driver's (what drivers share lives in protocols/ or drivers/lib/); the core (src/)
// names no driver: only the composition root, the command line (src/cli/), reads the registry.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", ".tools/", "coverage/", "dist/"] },
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
    files: ["web/**/*.js", "center/web/**/*.js"],
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
  {
    files: ["drivers/*/**/*.ts"],
    // a test may compare two drivers (gpsd's fixes against nmea-gps's)
    ignores: ["**/*.test.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "^\\.\\./(?!\\.\\./|lib/|serial-line\\.ts$)",
              message:
                "a driver imports no other driver's folder: shared vocabularies go to protocols/ or drivers/lib/.",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["src/**/*.ts"],
    // The composition root (src/cli) alone hands the registry to the rest.
    ignores: ["src/cli/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["**/drivers/**"],
              message: "the core names no driver: it is handed the registry's drivers by src/cli/main.ts.",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["src/cli/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "/drivers/(?!registry\\.ts$)",
              message: "the command line reaches drivers through drivers/registry.ts only.",
            },
          ],
        },
      ],
    },
  },
);
