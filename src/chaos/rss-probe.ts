// Preloaded into the real CLI (`node --import <this> dist/cli/main.js ...`) by the chaos run: when
// the process exits, it appends its peak RSS to the file named by CHAOS_RSS_FILE. stdout stays
// the CLI's own.
import { appendFileSync } from 'node:fs';

const file = process.env.CHAOS_RSS_FILE;
if (file) {
  process.on('exit', () => {
    appendFileSync(file, `${process.resourceUsage().maxRSS / 1024}\n`);
  });
}
