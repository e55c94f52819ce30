// Live updates: one EventSource on /api/live (server-sent events, docs/web-api.md) for the whole
// page, handed to whichever page is showing. EventSource reconnects by itself after a dropped
// connection; when the server refuses (a lost session, a restart in progress) it gives up, so we
// open a new one after a growing pause, and tell the app, which re-checks the session.

/** The event names the server sends. */
const TYPES = ["status", "device", "values", "wave", "case", "report"];
/**
 * Ours: the stream is back after a gap. What was sent meanwhile (a reading, a receipt) is lost with
 * the gap, so every page re-fetches what it shows.
 */
const RESYNC = "resync";

export function createLive({ onConnected, onGaveUp, types = TYPES } = {}) {
  const handlers = new Map([...types, RESYNC].map((type) => [type, new Set()]));
  let source = null;
  let lost = false;
  let retryMs = 1000;
  let timer = null;
  let stopped = false;

  function dispatch(type, ev) {
    let data;
    try {
      data = JSON.parse(ev.data);
    } catch {
      return;
    }
    for (const fn of handlers.get(type)) fn(data);
  }

  function open() {
    timer = null;
    if (stopped) return;
    const es = new EventSource("/api/live");
    source = es;
    for (const type of types) es.addEventListener(type, (ev) => dispatch(type, ev));
    es.onopen = () => {
      retryMs = 1000;
      onConnected?.(true);
      if (lost) for (const fn of handlers.get(RESYNC)) fn();
      lost = false;
    };
    es.onerror = () => {
      lost = true;
      onConnected?.(false);
      if (es.readyState !== EventSource.CLOSED || stopped) return;
      onGaveUp?.();
      timer = setTimeout(open, retryMs);
      retryMs = Math.min(retryMs * 2, 15_000);
    };
  }

  return {
    start() {
      stopped = false;
      lost = false;
      if (!source) open();
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      source?.close();
      source = null;
    },
    /** Calls fn(data) for each `type` message (fn() for "resync"); returns the function that stops it. */
    on(type, fn) {
      handlers.get(type)?.add(fn);
      return () => handlers.get(type)?.delete(fn);
    },
  };
}
