/**
 * Folding the Latin letters that NFD cannot split into a base letter and marks (ø, æ, ß, ł, þ…) to ASCII, as
 * CLDR's Latin-ASCII transliteration does. Meta asks for a-z in cities and regions, and NFD plus dropping marks
 * leaves `københavn`, `łodz` and `straße`; with this fold they are `kobenhavn`, `lodz` and `strasse`.
 *
 * The table is the letter part of CLDR's Latin-ASCII transform (common/transforms/Latin-ASCII.xml): Latin
 * letters, IPA, small capitals, ligatures, fullwidth and letterlike forms, and the modifier letters it turns
 * into apostrophes or quotes. Targets are lowercased here because every rule that folds has lowercased first;
 * a target that is punctuation (ʻ → ') becomes empty: the rules that fold keep letters only.
 */

// source target pairs, separated by spaces; a source alone maps to nothing.
const CLDR_LATIN_ASCII =
  'Æ ae Ð d Ø o Þ th ß ss æ ae ð d ø o þ th Đ d đ d Ħ h ħ h ı i Ĳ ij ĳ ij ĸ q Ŀ l ŀ l Ł l ł l ŉ n Ŋ n ŋ n Œ oe œ oe ' +
  'Ŧ t ŧ t ſ s ƀ b Ɓ b Ƃ b ƃ b Ƈ c ƈ c Ɖ d Ɗ d Ƌ d ƌ d Ɛ e Ƒ f ƒ f Ɠ g ƕ hv Ɩ i Ɨ i Ƙ k ƙ k ƚ l Ɲ n ƞ n Ƣ oi ƣ oi ' +
  'Ƥ p ƥ p ƫ t Ƭ t ƭ t Ʈ t Ʋ v Ƴ y ƴ y Ƶ z ƶ z Ǆ dz ǅ dz ǆ dz Ǉ lj ǈ lj ǉ lj Ǌ nj ǋ nj ǌ nj Ǥ g ǥ g Ǳ dz ǲ dz ǳ dz ' +
  'ȡ d Ȥ z ȥ z ȴ l ȵ n ȶ t ȷ j ȸ db ȹ qp Ⱥ a Ȼ c ȼ c Ƚ l Ⱦ t ȿ s ɀ z Ƀ b Ʉ u Ɇ e ɇ e Ɉ j ɉ j Ɍ r ɍ r Ɏ y ɏ y ' +
  'ɓ b ɕ c ɖ d ɗ d ɛ e ɟ j ɠ g ɡ g ɢ g ɦ h ɧ h ɨ i ɪ i ɫ l ɬ l ɭ l ɱ m ɲ n ɳ n ɴ n ɶ oe ɼ r ɽ r ɾ r ʀ r ʂ s ʈ t ' +
  'ʉ u ʋ v ʏ y ʐ z ʑ z ʙ b ʛ g ʜ h ʝ j ʟ l ʠ q ʣ dz ʥ dz ʦ ts ʪ ls ʫ lz ʹ ʺ ʻ ʼ ʽ ˆ ˈ ˋ ː ' +
  'ᴀ a ᴁ ae ᴃ b ᴄ c ᴅ d ᴆ d ᴇ e ᴊ j ᴋ k ᴌ l ᴍ m ᴏ o ᴘ p ᴛ t ᴜ u ᴠ v ᴡ w ᴢ z ᵫ ue ᵬ b ᵭ d ᵮ f ᵯ m ᵰ n ᵱ p ᵲ r ᵳ r ' +
  'ᵴ s ᵵ t ᵶ z ᵺ th ᵻ i ᵽ p ᵾ u ᶀ b ᶁ d ᶂ f ᶃ g ᶄ k ᶅ l ᶆ m ᶇ n ᶈ p ᶉ r ᶊ s ᶌ v ᶍ x ᶎ z ᶏ a ᶑ d ᶒ e ᶓ e ᶖ i ᶙ u ' +
  'ẚ a ẜ s ẝ s ẞ ss Ỻ ll ỻ ll Ỽ v ỽ v Ỿ y ỿ y ' +
  'Ⱡ l ⱡ l Ɫ l Ᵽ p Ɽ r ⱥ a ⱦ t Ⱨ h ⱨ h Ⱪ k ⱪ k Ⱬ z ⱬ z Ɱ m ⱱ v Ⱳ w ⱳ w ⱴ v ⱸ e ⱺ o Ȿ s Ɀ z ' +
  'ꜰ f ꜱ s Ꜳ aa ꜳ aa Ꜵ ao ꜵ ao Ꜷ au ꜷ au Ꜹ av ꜹ av Ꜻ av ꜻ av Ꜽ ay ꜽ ay Ꝁ k ꝁ k Ꝃ k ꝃ k Ꝅ k ꝅ k Ꝇ l ꝇ l Ꝉ l ꝉ l ' +
  'Ꝋ o ꝋ o Ꝍ o ꝍ o Ꝏ oo ꝏ oo Ꝑ p ꝑ p Ꝓ p ꝓ p Ꝕ p ꝕ p Ꝗ q ꝗ q Ꝙ q ꝙ q Ꝟ v ꝟ v Ꝡ vy ꝡ vy Ꝥ th ꝥ th Ꝧ th ꝧ th ' +
  'ꝱ d ꝲ l ꝳ m ꝴ n ꝵ r ꝶ r ꝷ t Ꝺ d ꝺ d Ꝼ f ꝼ f Ꞇ t ꞇ t Ꞑ n ꞑ n Ꞓ c ꞓ c Ꞡ g ꞡ g Ꞣ k ꞣ k Ꞥ n ꞥ n Ꞧ r ꞧ r ' +
  'Ꞩ s ꞩ s Ɦ h ﬀ ff ﬁ fi ﬂ fl ﬃ ffi ﬄ ffl ﬅ st ﬆ st ' +
  'ℂ c ℊ g ℋ h ℌ h ℍ h ℎ h ℐ i ℑ i ℒ l ℓ l ℕ n ℙ p ℚ q ℛ r ℜ r ℝ r ℤ z ℨ z ℬ b ℭ c ℯ e ℰ e ℱ f ℳ m ℴ o ℹ i ' +
  'ⅅ d ⅆ d ⅇ e ⅈ i ⅉ j';

/** Source character → its ASCII letters ('' when it folds to punctuation). */
const FOLD: ReadonlyMap<string, string> = (() => {
  const map = new Map<string, string>();
  const tokens = CLDR_LATIN_ASCII.split(' ');
  for (let i = 0; i < tokens.length; i++) {
    const source = tokens[i]!;
    const next = tokens[i + 1];
    // A target is ASCII; a source never is.
    const target = next !== undefined && /^[a-z]+$/.test(next) ? next : '';
    if (target !== '') i++;
    map.set(source, target);
  }
  // Fullwidth Ａ–Ｚ and ａ–ｚ.
  for (let c = 0; c < 26; c++) {
    const letter = String.fromCharCode(0x61 + c);
    map.set(String.fromCharCode(0xff21 + c), letter);
    map.set(String.fromCharCode(0xff41 + c), letter);
  }
  // The rules fold after lowercasing: a capital whose lowercase the table lacks (Ɩ → ɩ) still folds.
  for (const [source, target] of [...map]) {
    const lower = source.toLowerCase();
    if (lower.length === 1 && !map.has(lower)) map.set(lower, target);
  }
  return map;
})();

const FOLDABLE = new RegExp(`[${[...FOLD.keys()].join('')}]`, 'gu');
const HAS_FOLDABLE = new RegExp(FOLDABLE.source, 'u');

/** `text` with every letter of the table replaced by its ASCII letters. Other characters are left as they are. */
export function foldLatin(text: string): string {
  return HAS_FOLDABLE.test(text) ? text.replace(FOLDABLE, (char) => FOLD.get(char)!) : text;
}

/** The table's sources, for tests. */
export function foldedLetters(): ReadonlyMap<string, string> {
  return FOLD;
}
