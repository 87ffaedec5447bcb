// Preloaded into a CLI run (`node --import <this> dist/cli/main.js sync ...`) by crash tests: SIGKILLs the process
// inside the n-th SQLite state transaction that marks records synced (KILL_IN_COMMIT=n), right after its first
// statement ran and before it commits, so a test can kill a sync at that exact point.
import { createRequire } from 'node:module';

const target = Number(process.env.KILL_IN_COMMIT);
if (Number.isInteger(target) && target > 0) {
  const Database = createRequire(import.meta.url)('better-sqlite3');
  const prepare = Database.prototype.prepare;
  let counted = false;
  let commits = 0;
  Database.prototype.prepare = function (sql, ...rest) {
    const statement = prepare.call(this, sql, ...rest);
    if (/^\s*begin/i.test(sql)) counted = false;
    if (!/^\s*insert into "records"/i.test(sql)) return statement;
    const run = statement.run;
    statement.run = function (...args) {
      const result = run.apply(this, args);
      const params = Array.isArray(args[0]) ? args[0] : args;
      if (!counted && params.includes('synced')) {
        counted = true;
        if (++commits === target) process.kill(process.pid, 'SIGKILL');
      }
      return result;
    };
    return statement;
  };
}
