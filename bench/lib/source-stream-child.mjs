// Reads a model through one HTTP source's Source.stream the way a sync does (mapped columns, ordered by
// key hash) in a process of its own, so its peak RSS is the source's alone, not the bench's or the
// server's. argv: the source config as JSON. Prints { rows, seconds, maxRssMb } as JSON.
import { openSource } from '../../dist/sources/index.js';
import { BENCH_COLUMNS, BENCH_MODEL } from './sources-model.mjs';

const config = JSON.parse(process.argv[2]);
const started = performance.now();
const source = await openSource(config, { name: 'bench' });
let rows = 0;
try {
  for await (const chunk of source.stream(BENCH_MODEL, { columns: BENCH_COLUMNS, orderByKey: 'user_id', keyForm: 'sha256' })) rows += chunk.length;
} finally {
  await source.close();
}
const seconds = (performance.now() - started) / 1000;
// resourceUsage().maxRSS is the process's high-water mark (KiB), on Linux, macOS and Windows alike.
process.stdout.write(JSON.stringify({ rows, seconds, maxRssMb: process.resourceUsage().maxRSS / 1024 }) + '\n');
