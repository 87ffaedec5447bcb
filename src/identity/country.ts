/**
 * Country lookup: ISO 3166-1 alpha-2 and alpha-3 codes, and country names, matched ignoring case, accents, dots,
 * punctuation and spaces (`U.S.`, `usa`, `United States`, `Côte d'Ivoire`, `cote divoire`).
 *
 * Names come from:
 * - i18n-iso-countries' English names and aliases ("Great Britain", "USA");
 * - CLDR's English names, long and short, through Intl.DisplayNames ("Syria", "Laos", "Türkiye", "Bosnia");
 * - a few common forms neither has (SHORT_FORMS: "Holy See", "Macedonia", "Burma");
 * - CLDR's names in German, French, Spanish, Italian, Portuguese and Dutch ("Deutschland", "España", "Suisse").
 * A name that fits more than one country ("Congo") is ambiguous and gives no country. Codes win over names.
 *
 * Intl.DisplayNames reads the ICU data built into Node, so the index is built at load time, once. Node
 * versions with older ICU data may know a few names fewer; codes and English names don't depend on it.
 */
import countries from 'i18n-iso-countries/index.js';
import english from 'i18n-iso-countries/langs/en.json' with { type: 'json' };
import { foldLatin } from './latin.js';
import { isAscii } from './value.js';

// The package entry registers ~80 locales; only the English names come from it, so load just that one.
countries.registerLocale(english);

/** Names of more than one country: the candidates' alpha-2 codes, lowercase. */
export class AmbiguousCountry {
  constructor(readonly codes: readonly string[]) {}
}

/** Common English forms that neither i18n-iso-countries nor CLDR lists (alpha-2 → names). */
const SHORT_FORMS: Readonly<Record<string, readonly string[]>> = {
  VA: ['Holy See', 'Vatican', 'Vatican City State'],
  MK: ['Macedonia', 'Republic of Macedonia'],
  VN: ['Viet Nam'],
  MM: ['Burma'],
  SZ: ['Swaziland'],
  TL: ['East Timor'],
  LA: ['Lao PDR'],
  MD: ['Republic of Moldova'],
  FM: ['Federated States of Micronesia'],
  CD: ['DR Congo', 'DRC', 'Democratic Republic of Congo'],
  GB: ['Britain', 'England', 'Scotland', 'Wales', 'Northern Ireland'],
  NL: ['Holland'],
  IE: ['Republic of Ireland'],
  AE: ['Emirates'],
  MO: ['Macau'],
  FK: ['Falklands'],
  FO: ['Faeroe Islands'],
  ST: ['Sao Tome'],
  BL: ['St Barts', 'St Barths'],
  MF: ['Saint Martin'],
};

/** The other languages whose CLDR names are accepted where they name one country. */
const OTHER_LANGUAGES = ['de', 'fr', 'es', 'it', 'pt', 'nl'] as const;
/** CLDR's short forms of this length or less are abbreviations ("VS", "EUA", "É.-U.") that clash with codes. */
const MAX_ABBREVIATION = 3;

const MARKS = /\p{M}/gu;
// Punctuation and white space are ignored; anything else (a control character, a symbol) stays and matches nothing.
const IGNORED = /[\p{P}\s]/gu;

/** The lookup form of a code or name: lowercase, accents removed, Latin letters folded, no punctuation or spaces. */
export function countryKey(text: string): string {
  if (isAscii(text)) return text.toLowerCase().replace(IGNORED, '');
  return foldLatin(text.normalize('NFD').replace(MARKS, '').toLowerCase()).replace(IGNORED, '');
}

/** English variants people write: "&" or "and", "St." or "Saint". */
function englishVariants(name: string): string[] {
  const variants = [name, name.replace(/\s*&\s*/g, ' and ')];
  for (const v of [...variants]) {
    if (/^St\.? /.test(v)) variants.push(v.replace(/^St\.? /, 'Saint '));
    else if (/^Saint /.test(v)) variants.push(v.replace(/^Saint /, 'St '));
  }
  return variants;
}

function displayNames(language: string, alpha2: readonly string[], add: (name: string, code: string) => void): void {
  for (const style of ['long', 'short'] as const) {
    let names: Intl.DisplayNames;
    try {
      names = new Intl.DisplayNames([language], { type: 'region', style, fallback: 'none' });
    } catch {
      return; // a Node built without this locale's data: the other sources still work
    }
    for (const code of alpha2) {
      const name = names.of(code);
      if (name === undefined || (style === 'short' && countryKey(name).length <= MAX_ABBREVIATION)) continue;
      if (language === 'en') for (const v of englishVariants(name)) add(v, code);
      else add(name, code);
    }
  }
}

function buildIndex(): Map<string, string | AmbiguousCountry> {
  const codes = new Map<string, string>();
  for (const alpha2 of Object.keys(countries.getAlpha2Codes())) codes.set(countryKey(alpha2), alpha2.toLowerCase());
  for (const [alpha3, alpha2] of Object.entries(countries.getAlpha3Codes())) codes.set(countryKey(alpha3), alpha2.toLowerCase());

  const named = new Map<string, Set<string>>();
  const add = (name: string, code: string) => {
    const key = countryKey(name);
    if (key === '' || codes.has(key)) return;
    let set = named.get(key);
    if (!set) named.set(key, (set = new Set()));
    set.add(code.toLowerCase());
  };
  const alpha2 = Object.keys(countries.getAlpha2Codes());
  for (const [code, names] of Object.entries(countries.getNames('en', { select: 'all' }))) {
    for (const name of names) for (const v of englishVariants(name)) add(v, code);
  }
  displayNames('en', alpha2, add);
  for (const [code, names] of Object.entries(SHORT_FORMS)) for (const name of names) add(name, code);
  for (const language of OTHER_LANGUAGES) displayNames(language, alpha2, add);

  const index = new Map<string, string | AmbiguousCountry>(codes);
  for (const [key, set] of named) index.set(key, set.size === 1 ? [...set][0]! : new AmbiguousCountry([...set].sort()));
  return index;
}

const INDEX = buildIndex();
const THE = /^\s*the\s/i;

// Country columns hold few distinct spellings: remember them (capped), so a row costs one Map access.
const MEMO_CAP = 4096;
const memo = new Map<string, string | AmbiguousCountry | null>();

/** The lowercase alpha-2 code for a country code or name, an AmbiguousCountry, or undefined when unknown. */
export function lookupCountry(text: string): string | AmbiguousCountry | undefined {
  const known = memo.get(text);
  if (known !== undefined) return known ?? undefined;
  let found = INDEX.get(countryKey(text));
  // "The Gambia", "the Netherlands": the article is optional.
  if (found === undefined && THE.test(text)) found = INDEX.get(countryKey(text.replace(THE, '')));
  if (memo.size < MEMO_CAP) memo.set(text, found ?? null);
  return found;
}

/** The lowercase alpha-2 code for a country code or unambiguous name, or undefined. */
export function countryCode(text: string): string | undefined {
  const found = lookupCountry(text);
  return typeof found === 'string' ? found : undefined;
}
