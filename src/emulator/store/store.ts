/** The emulator's whole state: ad accounts, tokens, audiences (with members) and upload sessions. */
import { audienceIdFor, stripActPrefix } from '../ids.js';
import type { AdAccountSeed, TokenSeed, TokenState } from '../options.js';
import type { DataSourceSubtype } from '../payload.js';
import { newAudience, type AudienceRecord } from './audiences.js';
import { Membership, type CellValue } from './membership.js';
import { SessionTable } from './sessions.js';

export interface AccountRecord {
  id: string;
  name: string;
  tosAccepted: boolean;
  status: number;
}

export interface TokenRecord {
  token: string;
  userId: string;
  userName: string;
  scopes: string[];
  state: TokenState;
  expiresAt?: number;
  /** Digits; absent: every account. */
  adAccounts?: string[];
  /** Its app's secret, when that app requires appsecret_proof. */
  appSecret?: string;
}

export class EmulatorStore {
  readonly accounts = new Map<string, AccountRecord>();
  readonly tokens = new Map<string, TokenRecord>();
  readonly audiences = new Map<string, AudienceRecord>();
  readonly sessions = new SessionTable();
  private audienceSequence = 0;

  constructor(seeds: { tokens: readonly TokenSeed[]; adAccounts: readonly AdAccountSeed[] }) {
    this.seed(seeds);
  }

  seed(seeds: { tokens: readonly TokenSeed[]; adAccounts: readonly AdAccountSeed[] }): void {
    for (const t of seeds.tokens) this.putToken(t);
    for (const a of seeds.adAccounts) this.putAccount(a);
  }

  clear(): void {
    this.accounts.clear();
    this.tokens.clear();
    this.audiences.clear();
    this.sessions.clear();
    this.audienceSequence = 0;
  }

  putToken(t: TokenSeed): TokenRecord {
    const record: TokenRecord = {
      token: t.token,
      userId: t.userId ?? '100000000000001',
      userName: t.userName ?? 'Emulator User',
      scopes: t.scopes ?? ['ads_management', 'ads_read'],
      state: t.state ?? 'valid',
      ...(t.expiresAt === undefined ? {} : { expiresAt: t.expiresAt }),
      ...(t.adAccounts === undefined ? {} : { adAccounts: t.adAccounts.map(stripActPrefix) }),
      ...(t.appSecret === undefined ? {} : { appSecret: t.appSecret }),
    };
    this.tokens.set(t.token, record);
    return record;
  }

  putAccount(a: AdAccountSeed): AccountRecord {
    const id = stripActPrefix(a.id);
    if (!/^[0-9]+$/.test(id)) throw new Error(`Ad account id must be digits (optionally prefixed act_), got '${a.id}'`);
    const record: AccountRecord = { id, name: a.name ?? `Ad account ${id}`, tosAccepted: a.tosAccepted ?? true, status: a.status ?? 1 };
    this.accounts.set(id, record);
    return record;
  }

  createAudience(init: Omit<Parameters<typeof newAudience>[0], 'id'>): AudienceRecord {
    this.audienceSequence += 1;
    const audience = newAudience({ ...init, id: audienceIdFor(this.audienceSequence) });
    this.audiences.set(audience.id, audience);
    return audience;
  }

  liveAudiences(accountId: string): AudienceRecord[] {
    return [...this.audiences.values()].filter((a) => a.accountId === accountId && !a.deleted);
  }

  snapshot(): StoreSnapshot {
    return {
      version: 1,
      audienceSequence: this.audienceSequence,
      accounts: [...this.accounts.values()],
      tokens: [...this.tokens.values()],
      audiences: [...this.audiences.values()].map(snapshotAudience),
    };
  }

  restore(s: StoreSnapshot): void {
    if (s.version !== 1) throw new Error(`Unsupported emulator data file version ${String(s.version)}; delete the file to start afresh.`);
    this.clear();
    this.audienceSequence = s.audienceSequence;
    for (const a of s.accounts) this.accounts.set(a.id, { ...a });
    for (const t of s.tokens) this.tokens.set(t.token, { ...t });
    for (const a of s.audiences) {
      const { members, schemas, ...rest } = a;
      const membership = new Membership();
      for (const [schemaIndex, row] of members) membership.upsert(schemas[schemaIndex] ?? [], row);
      this.audiences.set(a.id, { ...rest, members: membership });
    }
  }
}

/** Upload sessions and running replaces are not persisted: a restart ends them, as a server restart would. */
export interface StoreSnapshot {
  version: number;
  audienceSequence: number;
  accounts: AccountRecord[];
  tokens: TokenRecord[];
  audiences: AudienceSnapshot[];
}

type AudienceSnapshot = Omit<AudienceRecord, 'members' | 'replace' | 'dataSource'> & {
  dataSource?: DataSourceSubtype;
  schemas: string[][];
  members: Array<[number, CellValue[]]>;
};

function snapshotAudience(a: AudienceRecord): AudienceSnapshot {
  const { members, replace: _replace, ...rest } = a;
  const schemaIndex = new Map<readonly string[], number>();
  const schemas: string[][] = [];
  const rows: Array<[number, CellValue[]]> = [];
  for (const { schema, row } of members.tuples()) {
    let index = schemaIndex.get(schema);
    if (index === undefined) {
      index = schemas.length;
      schemas.push([...schema]);
      schemaIndex.set(schema, index);
    }
    rows.push([index, [...row]]);
  }
  return { ...rest, operationStatus: rest.operationStatus === 414 ? 415 : rest.operationStatus, schemas, members: rows };
}
