// The package entry registers ~80 locales; only English names are part of our rule, so load just that one.
import countries from 'i18n-iso-countries/index.js';
import english from 'i18n-iso-countries/langs/en.json' with { type: 'json' };

countries.registerLocale(english);

/**
 * Country lookup: ISO 3166-1 alpha-2, alpha-3 and the English names (with the aliases the package knows,
 * e.g. "USA", "U.S.", "Great Britain"), case-insensitive and ignoring dots. Built once from
 * i18n-iso-countries so a lookup is one Map access.
 */
function lookupKey(text: string): string {
  return text.replace(/\./g, '').replace(/\s+/g, ' ').trim().toUpperCase();
}

function buildIndex(): Map<string, string> {
  const index = new Map<string, string>();
  const add = (name: string, alpha2: string) => {
    const key = lookupKey(name);
    if (key && !index.has(key)) index.set(key, alpha2.toLowerCase());
  };
  // Codes first so that a code always wins over a name that happens to look like one.
  for (const alpha2 of Object.keys(countries.getAlpha2Codes())) add(alpha2, alpha2);
  for (const [alpha3, alpha2] of Object.entries(countries.getAlpha3Codes())) add(alpha3, alpha2);
  for (const [alpha2, names] of Object.entries(countries.getNames('en', { select: 'all' }))) {
    for (const name of names) add(name, alpha2);
  }
  return index;
}

const INDEX = buildIndex();

/** The lowercase alpha-2 code for a country code or English name, or undefined when unknown. */
export function countryCode(text: string): string | undefined {
  return INDEX.get(text.toUpperCase()) ?? INDEX.get(lookupKey(text));
}
