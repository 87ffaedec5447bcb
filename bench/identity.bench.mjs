// Identity speed (issue 2): normalize + hash a synthetic 1,000,000-row table with 8 mapped keys
// (EXTERN_ID unhashed; EMAIL, PHONE, FN, LN, CT, ZIP, COUNTRY hashed), every row's values distinct and messy.
// Compared with the floor: a bare loop of crypto.hash('sha256', v) over the same 7,000,000 values.
import { hash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { createEncoderPool, createRecordEncoder } from '../dist/identity/index.js';

const ROWS = Number(process.env.IDENTITY_BENCH_ROWS ?? 1_000_000);
const BATCH = 10_000;
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
  de: ['München', 'Köln', 'Frankfurt am Main', 'DÜSSELDORF'],
  fr: ['Saint-Étienne', 'Besançon', 'Paris', 'Orléans'],
  br: ['São Paulo', 'Florianópolis', 'Belém'],
  in: ['Mumbai', 'Bengaluru', 'New Delhi'],
};
const COUNTRY_SPELLINGS = {
  us: ['US', 'usa', 'United States', ' U.S. ', 'United States of America'],
  gb: ['GB', 'uk', 'United Kingdom', 'Great Britain', 'GBR'],
  de: ['DE', 'Germany', 'deu', 'GERMANY'],
  fr: ['FR', 'France', 'fra'],
  br: ['BR', 'Brazil', 'bra'],
  in: ['IN', 'India', 'ind'],
};
const MIX = ['us', 'us', 'us', 'us', 'gb', 'gb', 'de', 'de', 'fr', 'br', 'in'];

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

function seconds(start) {
  return (performance.now() - start) / 1000;
}
const fmt = (n) => Math.round(n).toLocaleString('en-US');

export async function run() {
  const rows = Array.from({ length: ROWS }, (_, i) => makeRow(i));
  const values = rows.flatMap((r) => HASHED_COLUMNS.map((c) => String(r[c])));

  // Floor: only SHA-256 over the same number of values (warm up first).
  let sink = 0;
  for (let i = 0; i < 100_000; i++) sink += hash('sha256', values[i]).length;
  let start = performance.now();
  for (let i = 0; i < values.length; i++) sink += hash('sha256', values[i]).length;
  const floorSecs = seconds(start);

  // One thread.
  const encoder = createRecordEncoder(MAPPING, { defaultPhoneCountry: 'US' });
  for (let i = 0; i < 50_000; i++) sink += encoder.encode(rows[i]).cells.length;
  let rejected = 0;
  let dropped = 0;
  start = performance.now();
  for (let i = 0; i < rows.length; i++) {
    const r = encoder.encode(rows[i]);
    if (r.rejected) rejected++;
    dropped += r.dropped.length;
  }
  const oneSecs = seconds(start);

  // One thread the way a pipeline calls it: 10k-row batches whose records are kept until the batch is used.
  // Holding them costs garbage-collection time the loop above does not pay; the pool is measured the same way.
  let batched = 0;
  start = performance.now();
  for (let b = 0; b < rows.length; b += BATCH) {
    const records = rows.slice(b, b + BATCH).map((row) => encoder.encode(row));
    await null;
    batched += records.length;
  }
  const batchSecs = seconds(start);

  // Worker pool on all cores (the calling thread included), batches of 10k rows, a couple in flight per thread.
  const threads = availableParallelism();
  const pool = createEncoderPool(MAPPING, { defaultPhoneCountry: 'US' }, { threads });
  await pool.encodeBatch(rows.slice(0, 20_000));
  start = performance.now();
  const inFlight = [];
  let pooled = 0;
  for (let b = 0; b < rows.length; b += BATCH) {
    inFlight.push(pool.encodeBatch(rows.slice(b, b + BATCH)).then((recs) => { pooled += recs.length; }));
    if (inFlight.length >= threads * 2) await inFlight.shift();
  }
  await Promise.all(inFlight);
  const poolSecs = seconds(start);
  await pool.close();
  if (pooled !== rows.length || batched !== rows.length || sink === 0) throw new Error('pool lost rows');

  return {
    title: `Identity: normalize + hash ${fmt(ROWS)} rows × 8 keys (7 hashed)`,
    rows: [
      { metric: 'one thread (encode)', value: `${fmt(ROWS / oneSecs)} rows/s`, note: `${oneSecs.toFixed(2)} s; ${fmt(dropped)} values dropped, ${rejected} rows rejected` },
      { metric: 'one thread, 10k-row batches kept (encode)', value: `${fmt(ROWS / batchSecs)} rows/s`, note: `${batchSecs.toFixed(2)} s` },
      { metric: `worker pool (${threads} threads, 10k-row batches)`, value: `${fmt(ROWS / poolSecs)} rows/s`, note: `${poolSecs.toFixed(2)} s; ×${(batchSecs / poolSecs).toFixed(2)} vs one thread in batches, ×${(oneSecs / poolSecs).toFixed(2)} vs the one-thread loop` },
      { metric: `floor: bare crypto.hash over ${fmt(values.length)} values`, value: `${fmt(values.length / floorSecs)} hashes/s`, note: `${floorSecs.toFixed(2)} s` },
      { metric: 'one-thread time / floor time', value: (oneSecs / floorSecs).toFixed(2), note: 'goal ≤ 2' },
    ],
  };
}
