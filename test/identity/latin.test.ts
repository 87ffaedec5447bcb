// CT (and ST outside the US) fold the Latin letters NFD cannot split, as CLDR's Latin-ASCII transliteration does.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { byteRuleFor, MAX_OUTPUT_BYTES, UNSURE } from '../../src/identity/byteRules.js';
import { normalizeKey } from '../../src/identity/index.js';
import { foldedLetters, foldLatin } from '../../src/identity/latin.js';
import { placeName } from '../../src/identity/rules.js';
import { Dropped } from '../../src/identity/value.js';

const ctx = { country: undefined, phoneRegion: undefined, currentYear: 2026, dateFormat: 'iso' as const };
const out = new Uint8Array(MAX_OUTPUT_BYTES);
/** The CT fast path's text, or UNSURE. */
function fastCity(text: string): string | typeof UNSURE {
  const length = byteRuleFor('CT')!(text, out, ctx);
  return length === UNSURE ? UNSURE : Buffer.from(out.subarray(0, length)).toString('utf8');
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => String.fromCharCode(from + i));
// Latin letters: Basic Latin, Latin-1 Supplement, Latin Extended-A and Latin Extended Additional, plus every letter
// of the fold table. ẟ (a Middle Welsh delta) is the one letter of these blocks CLDR leaves alone.
const LATIN_LETTERS = [
  ...range(0x41, 0x5a),
  ...range(0x61, 0x7a),
  ...range(0xc0, 0x17f),
  ...range(0x1e00, 0x1eff),
  ...foldedLetters().keys(),
].filter((c) => /\p{L}/u.test(c) && c !== 'ẟ');
const latinLetter = fc.constantFrom(...LATIN_LETTERS);
const separator = fc.constantFrom(...' -.\'’,()/\u00a0\t0123456789');
const textOf = (letter: fc.Arbitrary<string>) =>
  fc.string({ unit: fc.oneof({ weight: 5, arbitrary: letter }, { weight: 1, arbitrary: separator }), minLength: 1, maxLength: 40 });
const latinText = textOf(latinLetter);
// The fast paths cover characters below U+1F00 (byteRules.ts): ligatures, fullwidth and letterlike forms are not.
const coveredLatinText = textOf(fc.constantFrom(...LATIN_LETTERS.filter((c) => c.charCodeAt(0) < 0x1f00)));

describe('Latin folding (CLDR Latin-ASCII)', () => {
  it('the examples', () => {
    const city = (v: string) => normalizeKey('CT', v);
    expect(city('København')).toMatchObject({ normalized: 'kobenhavn' });
    expect(city('Łódź')).toMatchObject({ normalized: 'lodz' });
    expect(city('Straße')).toMatchObject({ normalized: 'strasse' });
    expect(city('Þórshöfn')).toMatchObject({ normalized: 'thorshofn' });
    expect(city('Reykjavík')).toMatchObject({ normalized: 'reykjavik' });
    expect(city('Ærøskøbing')).toMatchObject({ normalized: 'aeroskobing' });
    expect(city('Œuilly')).toMatchObject({ normalized: 'oeuilly' });
    expect(city('Diyarbakır')).toMatchObject({ normalized: 'diyarbakir' });
    expect(city('Đà Nẵng')).toMatchObject({ normalized: 'danang' });
    expect(city('Ｔｏｋｙｏ')).toMatchObject({ normalized: 'tokyo' }); // fullwidth
    expect(normalizeKey('ST', 'Østfold')).toMatchObject({ normalized: 'ostfold' });
    expect(normalizeKey('ST', 'Þingeyjarsýsla')).toMatchObject({ normalized: 'thingeyjarsysla' });
    // Other scripts stay; so do the few Latin letters the table leaves (ə).
    expect(city('Москва')).toMatchObject({ normalized: 'москва' });
    expect(city('Gəncə')).toMatchObject({ normalized: 'gəncə' });
    // A modifier letter that folds to punctuation is removed; nothing left is "no letters".
    expect(city('ʻʻ')).toEqual({ status: 'dropped', reason: 'CT: no letters' });
    // Names keep their letters (Meta takes UTF-8 names).
    expect(normalizeKey('LN', 'Østergård')).toMatchObject({ normalized: 'østergård' });
  });

  it('folds each letter of the table to ASCII letters, both cases', () => {
    for (const [source, target] of foldedLetters()) {
      expect(target, source).toMatch(/^[a-z]*$/);
      expect(foldLatin(`x${source}y`)).toBe(`x${target}y`);
    }
    expect(foldLatin('plain ascii, and 東京')).toBe('plain ascii, and 東京');
  });

  it('property: CT of Latin text is a-z only (or dropped for having no letters)', () => {
    fc.assert(
      fc.property(latinText, (text) => {
        const result = placeName(text);
        // Dropped only when every letter folds to punctuation (ʻ, ː).
        if (result instanceof Dropped) expect(foldLatin(text)).not.toMatch(/\p{L}/u);
        else expect(result).toMatch(/^[a-z]+$/);
      }),
      { numRuns: 5_000 },
    );
  });

  it('property: the CT fast path gives the string rule on Latin text', () => {
    let answered = 0;
    fc.assert(
      fc.property(coveredLatinText, (text) => {
        const fast = fastCity(text);
        if (fast === UNSURE) return;
        answered++;
        expect(fast).toBe(placeName(text.trim()));
      }),
      { numRuns: 5_000 },
    );
    expect(answered).toBeGreaterThan(2_500); // not vacuous: ’ (U+2019) and İ are left to the string rule
  });
});
