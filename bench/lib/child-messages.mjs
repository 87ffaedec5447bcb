// Waits for a bench child's next IPC message of a type (the warehouse API servers run in children).

/** The child's next message of `type`; rejects when the child exits first. */
export function nextMessage(child, type, label) {
  return new Promise((resolve, reject) => {
    const onMessage = (m) => {
      if (m?.type !== type) return;
      child.off('message', onMessage);
      resolve(m);
    };
    child.on('message', onMessage);
    child.once('exit', (code) => reject(new Error(`${label} exited (${code})`)));
  });
}
