// Test-only, preloaded into a daemon with NODE_OPTIONS="--import …/block-loop.ts": SIGUSR2 blocks
// its event loop for $VG_TEST_BLOCK_MS ms (a busy loop), as a hung gateway would. Nothing in src/ knows of it.
process.on("SIGUSR2", () => {
  const end = Date.now() + Number(process.env.VG_TEST_BLOCK_MS ?? 3000);
  while (Date.now() < end);
});
