/**
 * `serve` follows edits of its config file and model files, as `plan` does on each invocation: the
 * files are read again before every run and every few seconds. A file that cannot be used (a YAML
 * syntax error, a missing model file) never stops the service: it keeps the last good config, logs
 * the problem once and shows it on the dashboard and /healthz, and takes the fix when it comes.
 */
import type { Logger } from 'pino';
import { loadConfig, type Config } from '../config/index.js';

/** Settings read once at start: a change is reported, and used after a restart. */
const FIXED_AT_START = ['state', 'server'] as const;

export interface ConfigReloaderOptions {
  env: NodeJS.ProcessEnv;
  /** The config in use. */
  current(): Config;
  /** Puts a changed config in use. */
  apply(next: Config): void;
  log: Logger;
}

export class ConfigReloader {
  private problem: string | undefined;
  private restartNote: string | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ConfigReloaderOptions) {}

  /** Why the config file cannot be used right now (the service runs on the last good one). */
  get error(): string | undefined {
    return this.problem;
  }

  /** Reads the config and model files again and puts them in use when they changed. Never throws. */
  check(): void {
    const { current, apply, log, env } = this.options;
    const inUse = current();
    let next: Config;
    try {
      next = loadConfig(inUse.configPath, env);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      if (message !== this.problem) {
        log.error({ event: 'config_invalid', error: message }, `the config cannot be used, so the service keeps running with the last good config: ${message}`);
      }
      this.problem = message;
      return;
    }
    if (this.problem !== undefined) log.info({ event: 'config_valid' }, 'the config file is valid again');
    this.problem = undefined;

    const changedFixed = FIXED_AT_START.filter((key) => !sameValue(next[key], inUse[key]));
    const note = changedFixed.join(',');
    if (note !== '' && note !== this.restartNote) {
      log.warn({ event: 'config_needs_restart', settings: changedFixed }, `${changedFixed.join(' and ')} changed in the config: restart the service to use the new settings`);
    }
    this.restartNote = note;
    const { server: _ignored, ...rest } = next;
    const effective: Config = { ...rest, state: inUse.state, ...(inUse.server === undefined ? {} : { server: inUse.server }) };
    if (sameValue(effective, inUse)) return;
    apply(effective);
    log.info({ event: 'config_reloaded', syncs: effective.syncs.map((s) => s.name) }, `config reloaded from ${inUse.configPath}`);
  }

  /** Checks every `intervalMs` (0: only when check() is called). */
  start(intervalMs: number): void {
    if (intervalMs <= 0) return;
    this.timer = setInterval(() => this.check(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** Deep equality of plain config values, whatever the order of their keys. */
function sameValue(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'undefined';
}
