import type { Command } from 'commander';
import { Workspace } from '../app/workspace.js';

export const DEFAULT_CONFIG = 'audience-sync.yml';

export function withConfigOption(cmd: Command): Command {
  return cmd.option('-c, --config <file>', 'config file', process.env.AUDIENCE_SYNC_CONFIG ?? DEFAULT_CONFIG);
}

/** Opens the config's workspace for one command and always closes it (state, warehouses). */
export async function withWorkspace<T>(configPath: string, fn: (ws: Workspace) => Promise<T>): Promise<T> {
  const ws = await Workspace.open(configPath);
  try {
    return await fn(ws);
  } finally {
    await ws.close();
  }
}
