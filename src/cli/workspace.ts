import type { Command } from 'commander';
import type { Workspace } from '../app/workspace.js';

export const DEFAULT_CONFIG = 'audience-sync.yml';

export function withConfigOption(cmd: Command): Command {
  return cmd.option('-c, --config <file>', 'config file', process.env.AUDIENCE_SYNC_CONFIG ?? DEFAULT_CONFIG);
}

/** Opens the config's workspace for one command and always closes it (state, warehouses). */
export async function withWorkspace<T>(configPath: string, fn: (ws: Workspace) => Promise<T>): Promise<T> {
  // Loaded on use: the CLI starts without the warehouse drivers until a command needs them.
  const { Workspace } = await import('../app/workspace.js');
  const ws = await Workspace.open(configPath);
  try {
    return await fn(ws);
  } finally {
    await ws.close();
  }
}
