/**
 * An audience's members (docs/graph-api.md, the emulator's membership). A member is the tuple of cells last sent for it. A row that shares a
 * person identifier (same key, same non-empty value: EXTERN_ID, EMAIL, PHONE, MADID, ...) with existing members
 * becomes that member (several matches merge into one), so a changed email under the same EXTERN_ID lands on the
 * same person. Rows without any person identifier are matched on their whole tuple of identifier cells.
 * One index Map per key keeps ingest O(cells), so a million members load in seconds.
 */
import { identityRole } from '../schema-keys.js';

export type CellValue = string | number;

export interface MemberTuple {
  /** Shared between all rows of one batch, so a million members don't carry a million schema arrays. */
  schema: readonly string[];
  row: readonly CellValue[];
}

export type UpsertOutcome = 'added' | 'updated' | 'unchanged';

export class Membership {
  private readonly members = new Map<number, MemberTuple>();
  /** key -> value -> member id, for person identifiers. */
  private readonly byIdentifier = new Map<string, Map<CellValue, number>>();
  /** whole-tuple key -> member id, only for members without any person identifier. */
  private readonly byTuple = new Map<string, number>();
  /** One shared string per distinct attribute value (gender, birth year, country...): millions fewer objects. */
  private readonly interned = new Map<string, string>();
  private nextId = 1;

  get size(): number {
    return this.members.size;
  }

  upsert(schema: readonly string[], row: CellValue[]): UpsertOutcome {
    const plan = planOf(schema);
    this.intern(plan, row);
    const matches = this.matching(plan, schema, row);
    if (matches === undefined) {
      const id = this.nextId++;
      this.members.set(id, { schema, row });
      this.indexMember(plan, id, schema, row);
      return 'added';
    }
    const first = typeof matches === 'number' ? matches : (matches[0] as number);
    const current = this.members.get(first);
    if (typeof matches === 'number' && current !== undefined && sameTuple(current, schema, row)) return 'unchanged';
    for (const id of typeof matches === 'number' ? [matches] : matches) this.deleteMember(id);
    this.members.set(first, { schema, row });
    this.indexMember(plan, first, schema, row);
    return 'updated';
  }

  /** Removes every member that shares a person identifier with the row (or its whole tuple). Returns how many. */
  remove(schema: readonly string[], row: readonly CellValue[]): number {
    const matches = this.matching(planOf(schema), schema, row);
    if (matches === undefined) return 0;
    if (typeof matches === 'number') {
      this.deleteMember(matches);
      return 1;
    }
    for (const id of matches) this.deleteMember(id);
    return matches.length;
  }

  *tuples(): IterableIterator<MemberTuple> {
    yield* this.members.values();
  }

  /** Each member as key -> cell, leaving out empty cells (an empty cell means "unknown"). */
  list(): Array<Record<string, CellValue>> {
    const out: Array<Record<string, CellValue>> = [];
    for (const { schema, row } of this.members.values()) {
      const record: Record<string, CellValue> = {};
      schema.forEach((key, i) => {
        const cell = row[i];
        if (cell !== undefined && cell !== '') record[key] = cell;
      });
      out.push(record);
    }
    return out;
  }

  /** The member ids the row matches: undefined for none, a number for one (the common case), else sorted ids. */
  private matching(plan: SchemaPlan, schema: readonly string[], row: readonly CellValue[]): number | number[] | undefined {
    let one: number | undefined;
    let many: number[] | undefined;
    let hasIdentifier = false;
    for (const i of plan.person) {
      const value = row[i];
      if (value === undefined || value === '') continue;
      hasIdentifier = true;
      const id = this.byIdentifier.get(schema[i] as string)?.get(value);
      if (id === undefined || id === one || many?.includes(id)) continue;
      if (one === undefined) one = id;
      else (many ??= [one]).push(id);
    }
    if (!hasIdentifier) return this.byTuple.get(tupleKey(plan, schema, row));
    return many ? many.sort((a, b) => a - b) : one;
  }

  private intern(plan: SchemaPlan, row: CellValue[]): void {
    for (const i of plan.attribute) {
      const value = row[i];
      if (typeof value !== 'string' || value === '') continue;
      const shared = this.interned.get(value);
      if (shared === undefined) this.interned.set(value, value);
      else row[i] = shared;
    }
  }

  private indexMember(plan: SchemaPlan, id: number, schema: readonly string[], row: readonly CellValue[]): void {
    let hasIdentifier = false;
    for (const i of plan.person) {
      const value = row[i];
      if (value === undefined || value === '') continue;
      hasIdentifier = true;
      const key = schema[i] as string;
      let index = this.byIdentifier.get(key);
      if (!index) {
        index = new Map();
        this.byIdentifier.set(key, index);
      }
      index.set(value, id);
    }
    if (!hasIdentifier) this.byTuple.set(tupleKey(plan, schema, row), id);
  }

  private deleteMember(id: number): void {
    const member = this.members.get(id);
    if (!member) return;
    this.members.delete(id);
    const { schema, row } = member;
    const plan = planOf(schema);
    let hasIdentifier = false;
    for (const i of plan.person) {
      const value = row[i];
      if (value === undefined || value === '') continue;
      hasIdentifier = true;
      const index = this.byIdentifier.get(schema[i] as string);
      if (index?.get(value) === id) index.delete(value);
    }
    if (!hasIdentifier) {
      const key = tupleKey(plan, schema, row);
      if (this.byTuple.get(key) === id) this.byTuple.delete(key);
    }
  }
}

/** Column positions by identity role, computed once per schema array (one per batch). */
interface SchemaPlan {
  person: number[];
  attribute: number[];
}

const plans = new WeakMap<readonly string[], SchemaPlan>();

function planOf(schema: readonly string[]): SchemaPlan {
  let plan = plans.get(schema);
  if (!plan) {
    plan = { person: [], attribute: [] };
    schema.forEach((key, i) => {
      const role = identityRole(key);
      if (role === 'person') plan?.person.push(i);
      else if (role === 'attribute') plan?.attribute.push(i);
    });
    plans.set(schema, plan);
  }
  return plan;
}

/** Identifier cells only, in key order, so the same person sent with columns reordered still matches. */
function tupleKey(plan: SchemaPlan, schema: readonly string[], row: readonly CellValue[]): string {
  const parts: string[] = [];
  for (const i of plan.attribute) {
    const value = row[i];
    if (value !== undefined && value !== '') parts.push(`${schema[i]}=${value}`);
  }
  return parts.sort().join('\u0000');
}

function sameTuple(member: MemberTuple, schema: readonly string[], row: readonly CellValue[]): boolean {
  if (member.row.length !== row.length) return false;
  for (let i = 0; i < row.length; i++) {
    if (member.schema[i] !== schema[i] || member.row[i] !== row[i]) return false;
  }
  return true;
}
