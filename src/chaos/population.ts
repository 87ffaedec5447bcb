import { createHash } from 'node:crypto';
import type { Rng } from './random.js';

/** One row of a chaos model table. `user_id` null is a row the engine must reject. */
export interface ChaosRow {
  user_id: string | null;
  email: string;
  phone: string;
  first_name: string;
  country: string;
}

export const CHAOS_COLUMNS = ['user_id', 'email', 'phone', 'first_name', 'country'] as const;

/** What Meta should hold for one person, computed independently of the engine's identity code. */
export interface ExpectedMember {
  externId: string;
  emailHash: string;
  phoneHash: string;
}

export interface ChurnPlan {
  adds: number;
  /** People who left earlier and come back under their old key, with new identifiers. */
  readds: number;
  updates: number;
  /** Rows whose raw values change only in letter case or white space (normalize to the same cells). */
  cosmetic: number;
  removes: number;
  /** Rows without a primary key, rejected by the engine. */
  nullKeys: number;
}

export interface ChurnOutcome {
  added: number;
  readded: number;
  updated: number;
  cosmetic: number;
  removed: number;
}

interface Person {
  id: string;
  /** Serial of the person's current identifiers; every change takes a fresh one, so no two people ever share an email or phone. */
  serial: number;
  name: string;
  style: number;
}

const NAMES = ['Quillonia', 'Zephyrine', 'Brannoch', 'Ysolde', 'Thaddeon', 'Marisabel', 'Orlavian', 'Keturah', 'Vasquine', 'Dellamore'];
const COUNTRY_SPELLINGS = ['US', 'usa', 'United States', ' U.S. '];

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** Letters only (names lose digits when normalized), distinct per serial. */
function letters(n: number): string {
  let s = '';
  for (let v = n + 1; v > 0; v = Math.floor(v / 26)) s += String.fromCharCode(97 + (v % 26));
  return s;
}

/** A US number 650 2xx xxxx that libphonenumber accepts; unique per serial below 8,000,000. */
function nationalDigits(serial: number): string {
  return `650${String(2_000_000 + (serial % 7_999_999))}`;
}

/**
 * The people of one model, kept in memory by the chaos run: it churns them between runs, renders
 * them as table rows (with messy formatting), and says what the audience must hold.
 */
export class Population {
  private readonly people = new Map<string, Person>();
  private readonly departed: string[] = [];
  /** Keys in the order they (re)joined, newest last: removals favour recent arrivals. */
  private order: string[] = [];
  private nullRows: ChaosRow[] = [];
  private nextId = 0;
  private readonly rawPii = new Set<string>();

  constructor(
    /** Prefix of this model's keys, so two models never share a key. */
    private readonly prefix: string,
    private readonly rng: Rng,
    /** Shared by every model of one chaos run, so no two people anywhere share an email or phone. */
    private readonly serials: { next: number },
  ) {}

  get size(): number {
    return this.people.size;
  }

  churn(plan: ChurnPlan): ChurnOutcome {
    const out: ChurnOutcome = { added: 0, readded: 0, updated: 0, cosmetic: 0, removed: 0 };
    const removes = Math.min(plan.removes, Math.floor(this.people.size * 0.2));
    for (let i = 0; i < removes; i++) {
      // Half the time one of the newest arrivals: they may still be in flight from a killed run.
      const recent = this.rng.chance(0.5);
      const window = recent ? Math.min(this.order.length, 50) : this.order.length;
      const index = this.order.length - 1 - this.rng.int(0, window - 1);
      const id = this.order[index];
      if (id === undefined) break;
      this.order.splice(index, 1);
      this.people.delete(id);
      this.departed.push(id);
      out.removed++;
    }
    for (let i = 0; i < plan.readds && this.departed.length > 0; i++) {
      const id = this.departed.splice(this.rng.int(0, this.departed.length - 1), 1)[0]!;
      this.join(id);
      out.readded++;
    }
    for (let i = 0; i < plan.adds; i++) {
      this.join(`${this.prefix}${this.nextId++}`);
      out.added++;
    }
    const ids = [...this.people.keys()];
    for (let i = 0; i < plan.updates && ids.length > 0; i++) {
      const person = this.people.get(this.rng.pick(ids))!;
      person.serial = this.serials.next++;
      if (this.rng.chance(0.3)) person.name = this.rng.pick(NAMES);
      this.remember(person);
      out.updated++;
    }
    for (let i = 0; i < plan.cosmetic && ids.length > 0; i++) {
      const person = this.people.get(this.rng.pick(ids))!;
      person.style = (person.style + 1) % 4;
      out.cosmetic++;
    }
    this.nullRows = [];
    for (let i = 0; i < plan.nullKeys; i++) {
      const row = this.render({ id: '', serial: this.serials.next++, name: this.rng.pick(NAMES), style: this.rng.int(0, 3) });
      this.nullRows.push({ ...row, user_id: null });
      this.rememberRow(row);
    }
    return out;
  }

  /** The model table as it should be now: every person once, plus this step's keyless rows. */
  rows(): ChaosRow[] {
    return [...[...this.people.values()].map((p) => this.render(p)), ...this.nullRows];
  }

  expected(): Map<string, ExpectedMember> {
    const out = new Map<string, ExpectedMember>();
    for (const p of this.people.values()) {
      out.set(p.id, { externId: p.id, emailHash: sha256(normalizedEmail(p)), phoneHash: sha256(`1${nationalDigits(p.serial)}`) });
    }
    return out;
  }

  /** Every raw email, phone and name ever written to the model, normalized (lower case, digits only for phones). */
  piiNeedles(): ReadonlySet<string> {
    return this.rawPii;
  }

  private join(id: string): void {
    const person: Person = { id, serial: this.serials.next++, name: this.rng.pick(NAMES), style: this.rng.int(0, 3) };
    this.people.set(id, person);
    this.order.push(id);
    this.remember(person);
  }

  private remember(person: Person): void {
    this.rememberRow(this.render(person));
  }

  private rememberRow(row: ChaosRow): void {
    this.rawPii.add(row.email.trim().toLowerCase());
    this.rawPii.add(row.phone.replace(/\D/g, '').replace(/^1(?=\d{10}$)/, ''));
    this.rawPii.add(row.first_name.toLowerCase());
  }

  private render(p: Person): ChaosRow {
    const digits = nationalDigits(p.serial);
    const [area, exchange, line] = [digits.slice(0, 3), digits.slice(3, 6), digits.slice(6)];
    const email = `${p.name.toLowerCase()}.${p.serial}@chaos-example.com`;
    const phoneFormats = [`+1 (${area}) ${exchange}-${line}`, `${area}.${exchange}.${line}`, `(${area}) ${exchange} ${line}`, `1-${area}-${exchange}-${line}`];
    return {
      user_id: p.id,
      email: p.style % 2 === 0 ? email : `  ${email.toUpperCase()} `,
      phone: phoneFormats[p.style] ?? digits,
      first_name: `${p.style === 3 ? p.name.toUpperCase() : p.name}${letters(p.serial)}`,
      country: COUNTRY_SPELLINGS[p.style] ?? 'US',
    };
  }
}

function normalizedEmail(p: Person): string {
  return `${p.name.toLowerCase()}.${p.serial}@chaos-example.com`;
}
