/** `audience-sync test-record <sync>`: sends one model row to the audience and shows what Meta said. */
import type { Command } from 'commander';
import { sendTestRecord, TestRecordError, type TestRecordResult } from '../../app/test-record.js';
import { CliError, EXIT } from '../exit-codes.js';
import { withConfigOption, withWorkspace } from '../workspace.js';

export function register(program: Command): void {
  withConfigOption(
    program
      .command('test-record')
      .description("send one record of a sync's model (the first, or --key) to its audience and print what was sent (hashed) and Meta's answer")
      .argument('<sync>', 'name of the sync')
      .option('--key <primaryKey>', "the primary key of the row to send (default: the model's first row)")
      .option('--json', 'print the result as JSON on stdout'),
  ).action(async (syncName: string, opts: { config: string; key?: string; json?: boolean }) => {
    await withWorkspace(opts.config, async (ws) => {
      let result: TestRecordResult;
      try {
        result = await sendTestRecord(ws, syncName, opts.key === undefined ? {} : { primaryKey: opts.key });
      } catch (e) {
        if (e instanceof TestRecordError) throw new CliError(e.message, EXIT.failed);
        throw e;
      }
      console.log(opts.json ? JSON.stringify(result, null, 2) : formatTestRecord(result));
      if (result.numInvalidEntries > 0) process.exitCode = EXIT.failed;
    });
  });
}

export function formatTestRecord(r: TestRecordResult): string {
  const width = Math.max(...r.schema.map((k) => k.length));
  const lines = [`sent 1 record of sync ${r.sync} to audience ${r.audienceId}:`];
  r.schema.forEach((key, i) => {
    const cell = r.cells[i];
    lines.push(`  ${key.padEnd(width)}  ${cell === undefined || cell === '' ? '(empty)' : String(cell)}`);
  });
  for (const d of r.dropped) lines.push(`  ${d.key} not sent: ${d.reason}`);
  lines.push(
    `Meta's answer: received ${r.numReceived}, invalid ${r.numInvalidEntries}`,
    r.numInvalidEntries === 0 ? '  the record was accepted' : '  Meta found the record invalid:',
  );
  for (const s of r.invalidEntrySamples) lines.push(`    ${s}`);
  return lines.join('\n');
}
