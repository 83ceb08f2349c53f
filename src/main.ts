/**
 * `npm start` and `node src/main.ts`. Loading Roster's modules takes a couple of seconds, and until then no
 * stop is handled: a Ctrl-C meanwhile would end the process without a word. It is said in one line instead,
 * as the log says a stop. Once loaded, start.ts handles the signals; a signal that came while loading but
 * is only seen then (the loading held the event loop) is its to handle, so none is lost.
 */
let loaded = false;
const stopWhileLoading = (signal: NodeJS.Signals) => {
  if (loaded) return;
  const line = {
    level: 30,
    time: Date.now(),
    msg: `stopped (${signal}) while Roster was loading, before it had started`,
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
  process.exit(0);
};
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, stopWhileLoading);

const { main } = await import('./start.ts');
loaded = true;
await main();
