import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "protocols/**/*.test.ts", "drivers/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests start child processes and brokers; two cores, so two workers.
    maxWorkers: 2,
    globalSetup: ["./test/support/run-tmpdir.ts"],
    reporters: ["default", "./test/support/summary-reporter.ts"],
  },
});
