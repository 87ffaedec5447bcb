// Identity speed (issues 2 and 15): normalize + hash a synthetic 1,000,000-row table with 8 mapped keys
// (EXTERN_ID unhashed; EMAIL, PHONE, FN, LN, CT, ZIP, COUNTRY hashed), every row's values distinct and messy.
// Compared with the floor: a bare loop of crypto.hash('sha256', v) over the same 7,000,000 values. The worker pool
// is compared with the same batches on one thread, and with the one-thread rates of all cores added up.
import { execFileSync } from 'node:child_process';
import { hash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { availableParallelism } from 'node:os';
import { createEncoderPool, createRecordEncoder } from '../dist/identity/index.js';

const ROWS = Number(process.env.IDENTITY_BENCH_ROWS ?? 1_000_000);
const BATCH = 10_000;
const CHUNK = 50_000;
const HASHED_COLUMNS = ['email', 'phone', 'first_name', 'last_name', 'city', 'zip', 'country'];
const MAPPING = {
  EXTERN_ID: 'customer_id', EMAIL: 'email', PHONE: 'phone', FN: 'first_name', LN: 'last_name',
  CT: 'city', ZIP: 'zip', COUNTRY: 'country',
};

// ---- synthetic table (built outside the timed sections) ----------------------------------------------------

const FIRST = ['José', 'zoë', 'Mary-Ann', 'FRANÇOIS', 'Anaïs', 'john', 'Jürgen', 'Björn', 'Siobhán', 'Renée', "D'Angelo", 'Jean Luc', 'Ólafur', 'Małgorzata'];
const LAST = ["O'Brien", 'García', 'MÜLLER', 'Smith-Jones', 'van der Berg', 'Nguyễn', 'Łukasiewicz', 'Dubois', 'Silva', 'Sharma', 'St. John'];
const CITIES = {
  us: ['New York', 'San Francisco', 'st. louis', 'Winston-Salem', 'HONOLULU'],
  gb: ['London', 'Newcastle upon Tyne', "King's Lynn", 'EDINBURGH'],
  de: ['München', 'Köln', 'Frankfurt am Main', 'DÜSSELDORF', 'Gießen'],
  fr: ['Saint-Étienne', 'Besançon', 'Paris', 'Orléans'],
  br: ['São Paulo', 'Florianópolis', 'Belém'],
  in: ['Mumbai', 'Bengaluru', 'New Delhi'],
  // Letters the CT rule folds (ø → o, æ → ae), as in the v2 identity rules.
  dk: ['København', 'Ærøskøbing', 'Tønder', 'Aarhus'],
};
const COUNTRY_SPELLINGS = {
  us: ['US', 'usa', 'United States', ' U.S. ', 'United States of America'],
  gb: ['GB', 'uk', 'United Kingdom', 'Great Britain', 'GBR'],
  de: ['DE', 'Germany', 'deu', 'GERMANY', 'Deutschland'],
  fr: ['FR', 'France', 'fra'],
  br: ['BR', 'Brazil', 'bra'],
  in: ['IN', 'India', 'ind'],
  dk: ['DK', 'Denmark', 'dnk', 'Dänemark'],
};
const MIX = ['us', 'us', 'us', 'us', 'gb', 'gb', 'de', 'de', 'fr', 'br', 'in', 'dk'];

const pick = (list, n) => list[n % list.length];
const digits = (n, width) => String(n % 10 ** width).padStart(width, '0');
// Letters that make every name and city value distinct (base-26 of the row number).
function tag(i) {
  let s = '';
  for (let n = i + 1; n > 0; n = Math.floor(n / 26)) s += String.fromCharCode(97 + (n % 26));
  return s;
}
function messyCase(text, i) {
  return i % 3 === 0 ? text.toUpperCase() : i % 3 === 1 ? text.toLowerCase() : text;
}

function phoneFor(country, i) {
  const n = digits(i * 7919 + 1234567, 7);
  switch (country) {
    case 'us': {
      const area = pick(['212', '415', '650', '312', '617', '808'], i);
      return pick([`+1 (${area}) ${n.slice(0, 3).replace(/^[01]/, '5')}-${n.slice(3)}`, `(${area}) 5${n.slice(1, 3)}-${n.slice(3)}`,
        `${area}.5${n.slice(1, 3)}.${n.slice(3)}`, `1-${area}-5${n.slice(1, 3)}-${n.slice(3)}`, `+1${area}5${n.slice(1)}`], i >> 3);
    }
    case 'gb':
      return pick([`+44 20 7${n.slice(0, 3)} ${n.slice(3)}`, `020 7${n.slice(0, 3)} ${n.slice(3)}`, `+44 (0)7700 9${n.slice(2)}`,
        `0044 20 8${n.slice(0, 3)} ${n.slice(3)}`, `07700 9${n.slice(2)}`], i >> 3);
    case 'de':
      return pick([`+49 30 ${n}`, `030 ${n}`, `0151 2${n}`, `+49 (0)151 2${n}`], i >> 3);
    case 'fr':
      return pick([`06 ${n.slice(0, 2)} ${n.slice(2, 4)} ${n.slice(4, 6)} ${n.slice(6)}0`, `+33 6 ${n.slice(0, 2)} ${n.slice(2, 4)} ${n.slice(4, 6)} ${n.slice(6)}0`], i >> 3);
    case 'br':
      return pick([`+55 11 9${n.slice(0, 4)}-${n.slice(4)}0`, `(11) 9${n.slice(0, 4)}-${n.slice(4)}0`], i >> 3);
    case 'dk':
      return pick([`+45 2${n.slice(0, 1)} ${n.slice(1, 3)} ${n.slice(3, 5)} ${n.slice(5)}`, `2${n.slice(0, 3)} ${n.slice(3)}`], i >> 3);
    default:
      return pick([`+91 98${n.slice(0, 3)} ${n.slice(3)}0`, `098${n.slice(0, 3)} ${n.slice(3)}0`], i >> 3);
  }
}

function zipFor(country, i) {
  const n = digits(i * 104729 + 10001, 9);
  switch (country) {
    case 'us': return pick([`${n.slice(0, 5)}-${n.slice(5)}`, ` ${n.slice(0, 5)}`, `${n.slice(0, 5)}${n.slice(5)}`], i >> 2);
    case 'gb': return `${pick(['SW', 'EC', 'N', 'W', 'SE', 'M'], i)}${n[0]}${pick(['', 'A', ''], i >> 2)} ${n[1]}${pick(['AA', 'BX', 'QT', 'ZZ'], i >> 4)}`;
    case 'de': return n.slice(0, 5);
    case 'fr': return `${n.slice(0, 2)} ${n.slice(2, 5)}`;
    case 'br': return `${n.slice(0, 5)}-${n.slice(5, 8)}`;
    case 'dk': return n.slice(0, 4);
    default: return `${n.slice(0, 3)} ${n.slice(3, 6)}`;
  }
}

function makeRow(i) {
  const country = pick(MIX, i);
  const first = pick(FIRST, i) + tag(i);
  const last = pick(LAST, i >> 2) + tag(i);
  return {
    customer_id: i % 5 === 0 ? i : `crm-${i}`,
    email: `  ${messyCase(first, i)}.${messyCase(last, i >> 1)}+${i}@${pick(['Example.COM', 'mail.example.org', 'gmail.com', 'Company.co.uk'], i)} `,
    phone: phoneFor(country, i),
    first_name: ` ${messyCase(first, i >> 1)}`,
    last_name: messyCase(last, i),
    city: messyCase(pick(CITIES[country], i >> 3), i) + tag(i),
    zip: zipFor(country, i),
    country: pick(COUNTRY_SPELLINGS[country], i >> 1),
  };
}

// ---- timing -----------------------------------------------------------------------------------------------
// This VM's vCPUs don't run at the same speed (pinned with taskset, 1M hashes take 0.25 s on one and 0.43 s on
// the other), so a one-thread figure would depend on which core the scheduler picked. One-thread figures are
// therefore measured in a child process pinned to each core in turn (taskset, when there is one), the pool in a
// child on all cores; the pool is compared with the fastest core alone, and with every core's one-thread rate
// added up (the most all cores could give).

const REPEATS = 3;
const seconds = (start) => (performance.now() - start) / 1000;
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const best = (list) => Math.min(...list);
const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];

/** Encodes the table through a pool in 10k-row batches, a couple in flight per thread; each batch is released once resolved. */
async function timePool(pool, rows, threads) {
  const start = performance.now();
  const inFlight = [];
  let encoded = 0;
  for (let b = 0; b < rows.length; b += BATCH) {
    inFlight.push(pool.encodeBatch(rows.slice(b, b + BATCH)).then((batch) => {
      encoded += batch.count;
      batch.release();
    }));
    if (inFlight.length >= threads * 2) await inFlight.shift();
  }
  await Promise.all(inFlight);
  if (encoded !== rows.length) throw new Error(`the pool returned ${encoded} of ${rows.length} records`);
  return seconds(start);
}

// Bare SHA-256 on `threads` threads (or processes) at once, each hashing for a fixed time: hashes per second,
// all together (fixed time, not fixed work, so a slower core can't leave a faster one idle at the end). For
// reference: in one process, crypto.hash gains little from a second thread, while separate processes gain the
// full core. Likely cause: in OpenSSL 3 (Node 20 ships 3.0) every hash updates the digest's shared reference
// count atomically, so threads hashing at a high rate fight over one cache line (openssl/openssl#17064).
const HASH_SETUP = `
  const { hash } = require('node:crypto');
  const values = Array.from({ length: 100000 }, (_, i) => 'someone.' + i + '+tag@mail.example.org');
  for (let i = 0; i < 100000; i++) hash('sha256', values[i]);
  const hashUntil = (until) => {
    let n = 0;
    while (Date.now() < until) for (let i = 0; i < 1000; i++) hash('sha256', values[n++ % 100000]);
    return n;
  };`;
const HASH_THREAD = `${HASH_SETUP}
  const { parentPort } = require('node:worker_threads');
  parentPort.postMessage('ready');
  parentPort.on('message', (until) => parentPort.postMessage(hashUntil(until)));`;
const HASH_PROCESS = `${HASH_SETUP}
  const [from, until] = process.argv.slice(1).map(Number);
  while (Date.now() < from);
  console.log(hashUntil(until));`;

async function hashRateProcesses(processes) {
  const { execFile } = await import('node:child_process');
  const from = Date.now() + 1500;
  const runs = Array.from({ length: processes }, () => new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', HASH_PROCESS, String(from), String(from + 2000)], (error, stdout) => (error ? reject(error) : resolve(Number(stdout))));
  }));
  const counts = await Promise.all(runs);
  return counts.reduce((a, b) => a + b, 0) / 2;
}

async function hashRate(threads) {
  const { Worker } = await import('node:worker_threads');
  const workers = Array.from({ length: threads }, () => new Worker(HASH_THREAD, { eval: true }));
  const next = (w) => new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  await Promise.all(workers.map(next));
  const start = Date.now();
  const counts = await Promise.all(workers.map((w) => { const done = next(w); w.postMessage(start + 2000); return done; }));
  const secs = (Date.now() - start) / 1000;
  await Promise.all(workers.map((w) => w.terminate()));
  return counts.reduce((a, b) => a + b, 0) / secs;
}

/** One child's measurements: 'one' (one thread; run pinned to a core) or 'pool' (all cores). */
async function measure(mode) {
  // Through JSON so every string is flat, as a warehouse driver's are: the generator's template literals make
  // rope strings, and whichever loop read them first would pay for flattening them (the floor did, in earlier
  // versions of this bench, which made the one-thread ratio look better than it is).
  const rows = JSON.parse(JSON.stringify(Array.from({ length: ROWS }, (_, i) => makeRow(i))));
  const options = { defaultPhoneCountry: 'US' };
  const threads = availableParallelism();
  if (mode === 'pool') {
    const pool = createEncoderPool(MAPPING, options, { threads });
    (await pool.encodeBatch(rows.slice(0, 20_000))).release();
    const pooled = [];
    for (let repeat = 0; repeat < REPEATS; repeat++) pooled.push(await timePool(pool, rows, threads));
    await pool.close();
    const hashes = [];
    const processes = [];
    for (let repeat = 0; repeat < REPEATS; repeat++) {
      hashes.push(await hashRate(threads));
      processes.push(await hashRateProcesses(threads));
    }
    return { threads, pooled, hashRate: Math.max(...hashes), hashRateProcesses: Math.max(...processes) };
  }
  const values = rows.flatMap((r) => HASHED_COLUMNS.map((c) => String(r[c])));
  const encoder = createRecordEncoder(MAPPING, options);
  const one = createEncoderPool(MAPPING, options, { threads: 1 });
  let sink = 0;
  for (let i = 0; i < 100_000; i++) sink += hash('sha256', values[i]).length;
  for (let i = 0; i < 50_000; i++) sink += encoder.encode(rows[i]).cells.length;
  (await one.encodeBatch(rows.slice(0, 20_000))).release();
  const floor = [];
  const loop = [];
  const batched = [];
  let rejected = 0;
  let dropped = 0;
  const perRow = HASHED_COLUMNS.length;
  for (let repeat = 0; repeat < REPEATS; repeat++) {
    // The floor (only SHA-256 over the same values) and the encoder record by record (what the engine does with
    // the rows that changed) take turns every CHUNK rows, each going first in every other chunk, so a change in
    // the machine's speed (this VM's cores slow down for minutes at a time) hits both alike.
    let floorSecs = 0;
    let loopSecs = 0;
    rejected = 0;
    dropped = 0;
    for (let from = 0, turn = 0; from < rows.length; from += CHUNK, turn++) {
      const to = Math.min(from + CHUNK, rows.length);
      for (const part of turn % 2 === 0 ? ['floor', 'loop'] : ['loop', 'floor']) {
        const start = performance.now();
        if (part === 'floor') {
          for (let i = from * perRow; i < to * perRow; i++) sink += hash('sha256', values[i]).length;
          floorSecs += seconds(start);
        } else {
          for (let i = from; i < to; i++) {
            const r = encoder.encode(rows[i]);
            if (r.rejected) rejected++;
            dropped += r.dropped.length;
          }
          loopSecs += seconds(start);
        }
      }
    }
    floor.push(floorSecs);
    loop.push(loopSecs);
    // The pool API on one thread (threads: 1: the caller encodes everything), same batches as the pool.
    batched.push(await timePool(one, rows, 1));
  }
  await one.close();
  if (sink === 0) throw new Error('unreachable');
  const hashes = [];
  for (let repeat = 0; repeat < REPEATS; repeat++) hashes.push(await hashRate(1));
  return { values: values.length, floor, loop, batched, rejected, dropped, hashRate: Math.max(...hashes) };
}

/** Runs measure(mode) in a child process, pinned to `cpu` when given (and taskset works). */
function child(mode, cpu) {
  const script = fileURLToPath(import.meta.url);
  const node = [process.execPath, '--max-old-space-size=4096', script, `--measure=${mode}`];
  const [command, ...args] = cpu === undefined ? node : ['taskset', '-c', String(cpu), ...node];
  const out = execFileSync(command, args, { encoding: 'utf8', maxBuffer: 16 << 20, stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out.trim().split('\n').pop());
}

function pinningWorks() {
  try {
    execFileSync('taskset', ['-c', '0', process.execPath, '-e', '0'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function run() {
  const cpus = availableParallelism();
  const pinned = pinningWorks();
  // One thread on each core in turn (at most 8), or once unpinned where taskset is missing.
  const perCore = (pinned ? Array.from({ length: Math.min(cpus, 8) }, (_, cpu) => cpu) : [undefined]).map((cpu) => ({ cpu, ...child('one', cpu) }));
  const pool = child('pool');
  const fastest = perCore.reduce((a, b) => (best(b.batched) < best(a.batched) ? b : a));
  const { values, floor, loop, batched, rejected, dropped } = fastest;
  const floorSecs = best(floor);
  const loopSecs = best(loop);
  // Each repeat's encoder and floor ran interleaved, so their ratio is paired; the median of the repeats.
  const ratios = loop.map((secs, i) => secs / floor[i]);
  const ratio = median(ratios);
  const oneSecs = best(batched);
  const poolSecs = best(pool.pooled);
  const poolSpeedup = oneSecs / poolSecs;
  const hashSpeedup = pool.hashRate / fastest.hashRate;
  const poolRate = ROWS / poolSecs;
  const idealRate = pinned ? perCore.reduce((sum, c) => sum + ROWS / best(c.batched), 0) : cpus * (ROWS / oneSecs);
  const where = fastest.cpu === undefined ? 'unpinned (no taskset)' : `on cpu ${fastest.cpu}, the fastest core`;
  const cores = perCore.map((c) => `cpu ${c.cpu}: ${fmt(ROWS / best(c.batched))}`).join(', ');

  const rate = (secs) => `${fmt(ROWS / secs)} rows/s`;
  const spread = (list) => `best of ${list.length}: ${list.map((x) => x.toFixed(2)).join(', ')} s`;
  return {
    title: `Identity: normalize + hash ${fmt(ROWS)} rows × 8 keys (7 hashed)`,
    rows: [
      { metric: 'one thread, record by record (encode)', value: rate(loopSecs), note: `${where}; ${spread(loop)}; ${fmt(dropped)} values dropped, ${rejected} rows rejected` },
      { metric: `floor: bare crypto.hash over ${fmt(values)} values`, value: `${fmt(values / floorSecs)} hashes/s`, note: `same core; ${spread(floor)}` },
      { metric: 'one-thread time / floor time', value: ratio.toFixed(2), note: `goal ≤ 2; median of ${ratios.length} runs in which floor and encoder took turns every ${fmt(CHUNK)} rows: ${ratios.map((x) => x.toFixed(2)).join(', ')}` },
      { metric: 'one thread, 10k-row batches (encodeBatch, threads: 1)', value: rate(oneSecs), note: `${where}; ${spread(batched)}${perCore.length > 1 ? `; rows/s per core: ${cores}` : ''}` },
      { metric: `worker pool, all ${pool.threads} cores (encodeBatch, threads: ${pool.threads})`, value: rate(poolSecs), note: `${spread(pool.pooled)}; ×${poolSpeedup.toFixed(2)} one thread in batches, ×${(loopSecs / poolSecs).toFixed(2)} record by record` },
      { metric: 'ideal on all cores: the one-thread rates of every core added up', value: `${fmt(idealRate)} rows/s`, note: pinned ? `one thread in batches, pinned to each core in turn` : `no taskset: ${cpus} × the unpinned one-thread rate` },
      { metric: 'pool / ideal', value: (poolRate / idealRate).toFixed(2), note: 'what the pool gets of all the cores; 1.00 would be no cost at all for spreading the work' },
      { metric: `for reference: bare crypto.hash on ${pool.threads} threads at once`, value: `×${hashSpeedup.toFixed(2)} one thread`, note: `${fmt(pool.hashRate)} hashes/s in all vs ${fmt(fastest.hashRate)} on the fastest core alone (2 s runs, best of ${REPEATS})` },
      { metric: `for reference: bare crypto.hash in ${pool.threads} processes at once`, value: `×${(pool.hashRateProcesses / fastest.hashRate).toFixed(2)} one thread`, note: `${fmt(pool.hashRateProcesses)} hashes/s in all; threads of one process contend in crypto.hash (OpenSSL ${process.versions.openssl}), processes don't` },
    ],
    headlines: [
      { figure: 'identity: normalize + hash (one thread)', measured: rate(loopSecs), floor: `${fmt(values / floorSecs)} hashes/s (bare SHA-256)`, ratio: `${ratio.toFixed(2)}× the floor's time`, goal: '≤ 2' },
      { figure: `identity: worker pool on all ${pool.threads} cores`, measured: rate(poolSecs), floor: `${rate(oneSecs)} one thread, same batches`, ratio: `${poolSpeedup.toFixed(2)}× one thread; ${(poolRate / idealRate).toFixed(2)} of all cores' one-thread rates added up`, goal: 'scales with cores' },
    ],
  };
}

const measureMode = process.argv.find((a) => a.startsWith('--measure='))?.slice('--measure='.length);
if (measureMode) console.log(JSON.stringify(await measure(measureMode)));
