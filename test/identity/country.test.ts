// COUNTRY: codes and names in the forms people write them. The CLDR part comes from the ICU data of the Node
// running the tests (Intl.DisplayNames), so the names below are a fixed list: they must hold on Node 20, 22 and 24.
import { describe, expect, it } from 'vitest';
import { countryCode, countryKey } from '../../src/identity/country.js';
import { normalizeKey } from '../../src/identity/index.js';

function country(value: string): string {
  const outcome = normalizeKey('COUNTRY', value);
  return outcome.status === 'ok' ? String(outcome.normalized) : outcome.status === 'dropped' ? outcome.reason : 'empty';
}

describe('COUNTRY names', () => {
  it('the names the old list missed', () => {
    const expected: Record<string, string> = {
      Syria: 'sy',
      Laos: 'la',
      Vatican: 'va',
      'Vatican City': 'va',
      'Holy See': 'va',
      Macedonia: 'mk',
      'North Macedonia': 'mk',
      Micronesia: 'fm',
      Moldova: 'md',
      'Viet Nam': 'vn',
      Vietnam: 'vn',
      Türkiye: 'tr',
      Turkey: 'tr',
      Czechia: 'cz',
      Burma: 'mm',
      Myanmar: 'mm',
      'Cape Verde': 'cv',
      Eswatini: 'sz',
      'Bosnia & Herzegovina': 'ba',
      'St Kitts and Nevis': 'kn',
      'Trinidad & Tobago': 'tt',
      'The Gambia': 'gm',
      'the Netherlands': 'nl',
      Palestine: 'ps',
      'Hong Kong': 'hk',
      England: 'gb',
    };
    const got = Object.fromEntries(Object.keys(expected).map((name) => [name, country(name)]));
    expect(got).toEqual(expected);
  });

  it('CLDR names in German, French, Spanish, Italian, Portuguese and Dutch', () => {
    const expected: Record<string, string> = {
      Deutschland: 'de',
      Allemagne: 'de',
      Alemania: 'de',
      Germania: 'de',
      Alemanha: 'de',
      Duitsland: 'de',
      España: 'es',
      Espagne: 'es',
      Spanien: 'es',
      Brasil: 'br',
      Brésil: 'br',
      Brasilien: 'br',
      Suisse: 'ch',
      Schweiz: 'ch',
      Svizzera: 'ch',
      Zwitserland: 'ch',
      Österreich: 'at',
      'Royaume-Uni': 'gb',
      'Vereinigte Staaten': 'us',
      'Estados Unidos': 'us',
      'EE. UU.': 'us',
      'Costa do Marfim': 'ci',
      Ivoorkust: 'ci',
      'Corée du Sud': 'kr',
      Irã: 'ir',
      Nederland: 'nl',
      België: 'be',
      Belgique: 'be',
    };
    const got = Object.fromEntries(Object.keys(expected).map((name) => [name, country(name)]));
    expect(got).toEqual(expected);
  });

  it('ignores case, accents, dots, punctuation and spaces', () => {
    for (const v of ['US', 'us', 'USA', 'U.S.', 'u.s.a', 'United States', 'UNITED STATES OF AMERICA', ' united-states ']) expect(country(v), v).toBe('us');
    for (const v of ["Côte d'Ivoire", 'Cote d’Ivoire', 'COTE DIVOIRE', 'Côte d’Ivoire']) expect(country(v), v).toBe('ci');
    for (const v of ['espana', 'ESPAÑA', 'España']) expect(country(v), v).toBe('es');
    expect(country('Åland Islands')).toBe('ax');
    expect(country('aland islands')).toBe('ax');
    expect(countryKey('St. Kitts & Nevis')).toBe('stkittsnevis');
  });

  it('codes win over names; abbreviations that clash with codes are not names', () => {
    expect(country('RU')).toBe('ru'); // Russia, although Spanish CLDR abbreviates the United Kingdom "RU"
    expect(country('deu')).toBe('de');
    expect(country('GBR')).toBe('gb');
    // French CLDR abbreviates the United States "É.-U.", which would read as "EU": not a name here.
    expect(country('EU')).toMatch(/^COUNTRY: not a known country/);
    expect(country('VS')).toMatch(/^COUNTRY: not a known country/);
  });

  it('a name of more than one country is dropped as ambiguous, naming the candidates', () => {
    expect(country('Congo')).toBe('COUNTRY: ambiguous: the name fits more than one country (cd, cg); use the ISO code');
    expect(country('Congo - Kinshasa')).toBe('cd');
    expect(country('Republic of the Congo')).toBe('cg');
    expect(country('DRC')).toBe('cd');
    expect(countryCode('Congo')).toBeUndefined(); // nor is it a phone region
  });

  it('unknown names are dropped with what to use instead', () => {
    expect(country('Atlantis')).toBe(
      'COUNTRY: not a known country (use an ISO alpha-2 or alpha-3 code, or the name in English, German, French, Spanish, Italian, Portuguese or Dutch)',
    );
    expect(country('XX')).toMatch(/^COUNTRY: not a known country/);
    expect(country('Korea')).toMatch(/^COUNTRY: not a known country/); // which one?
  });

  it('a name is the row country for phones and ZIPs too', () => {
    expect(normalizeKey('PHONE', '030 1234567', { country: 'Deutschland' })).toMatchObject({ normalized: '49301234567' });
    expect(normalizeKey('ZIP', 'SW1A 1AA', { country: 'Royaume-Uni' })).toMatchObject({ normalized: 'sw1a1' });
  });
});
