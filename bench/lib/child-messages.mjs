// Waits for a bench child's next IPC message of a type (the warehouse API servers run in children).

/** The child's next message of `type`; rejects when the child exits first. */
export function nextMessage(child, type, label) {
  return new Promise((resolve, reject) => {
    const onExit = (code) => {
      child.off('message', onMessage);
      reject(new Error(`${label} exited (${code})`));
    };
    const onMessage = (m) => {
      if (m?.type !== type) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(m);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}
