// Statements a warehouse runs for us are cancelled when this process is told to stop.

const running = new Set<() => Promise<void>>();
const SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];
/** How long a signal waits for the cancel requests before the process goes down anyway. */
const CANCEL_ON_SIGNAL_MS = 5_000;

function onSignal(signal: NodeJS.Signals): void {
  // A process with its own handler (serve, worker) shuts down itself; closing the source cancels.
  if (process.listenerCount(signal) > 1) return;
  const cancels = [...running].map((cancel) => cancel().catch(() => {}));
  const deadline = new Promise((resolve) => setTimeout(resolve, CANCEL_ON_SIGNAL_MS).unref());
  void Promise.race([Promise.all(cancels), deadline]).finally(() => {
    for (const s of SIGNALS) process.off(s, onSignal);
    // Without our listener the signal's default action (exit) applies again.
    process.kill(process.pid, signal);
  });
}

/**
 * Registers a statement that runs in the warehouse: on SIGTERM or SIGINT in a process that does
 * not handle them itself, it is cancelled before the process exits (an abandoned statement would
 * run, and bill, on). Returns the function that unregisters it.
 */
export function cancelOnSignal(cancel: () => Promise<void>): () => void {
  if (running.size === 0) for (const s of SIGNALS) process.on(s, onSignal);
  running.add(cancel);
  return () => {
    if (!running.delete(cancel) || running.size > 0) return;
    for (const s of SIGNALS) process.off(s, onSignal);
  };
}
