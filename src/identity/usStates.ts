/**
 * US states, DC and the inhabited territories (plus the minor outlying islands), by USPS code, then their names
 * and the AP-style abbreviations newspapers and address books use (`Calif.`, `Fla.`, `N.Y.`: the dots go with
 * the CT rule, and N.Y. is already the code).
 * This is our ST rule, not ISO data, so a small table in code is the source of truth.
 * Names are written in their lookup form: lowercase letters only (the CT rule applied).
 */
const STATES: ReadonlyArray<readonly [code: string, ...names: string[]]> = [
  ['al', 'alabama', 'ala'], ['ak', 'alaska'], ['az', 'arizona', 'ariz'], ['ar', 'arkansas', 'ark'],
  ['ca', 'california', 'calif', 'cal'], ['co', 'colorado', 'colo'], ['ct', 'connecticut', 'conn'], ['de', 'delaware', 'del'],
  ['fl', 'florida', 'fla'], ['ga', 'georgia'], ['hi', 'hawaii'], ['id', 'idaho'], ['il', 'illinois', 'ill'],
  ['in', 'indiana', 'ind'], ['ia', 'iowa'], ['ks', 'kansas', 'kan', 'kans'], ['ky', 'kentucky'], ['la', 'louisiana'],
  ['me', 'maine'], ['md', 'maryland'], ['ma', 'massachusetts', 'mass'], ['mi', 'michigan', 'mich'],
  ['mn', 'minnesota', 'minn'], ['ms', 'mississippi', 'miss'], ['mo', 'missouri'], ['mt', 'montana', 'mont'],
  ['ne', 'nebraska', 'neb', 'nebr'], ['nv', 'nevada', 'nev'], ['nh', 'newhampshire'], ['nj', 'newjersey'],
  ['nm', 'newmexico'], ['ny', 'newyork'], ['nc', 'northcarolina'], ['nd', 'northdakota'], ['oh', 'ohio'],
  ['ok', 'oklahoma', 'okla'], ['or', 'oregon', 'ore'], ['pa', 'pennsylvania', 'penn', 'penna'], ['ri', 'rhodeisland'],
  ['sc', 'southcarolina'], ['sd', 'southdakota'], ['tn', 'tennessee', 'tenn'], ['tx', 'texas', 'tex'], ['ut', 'utah'],
  ['vt', 'vermont'], ['va', 'virginia'], ['wa', 'washington', 'wash'], ['wv', 'westvirginia', 'wva'],
  ['wi', 'wisconsin', 'wis', 'wisc'], ['wy', 'wyoming', 'wyo'],
  ['dc', 'districtofcolumbia', 'washingtondc'],
  ['as', 'americansamoa'],
  ['gu', 'guam'],
  ['mp', 'northernmarianaislands', 'northernmarianas'],
  ['pr', 'puertorico'],
  ['vi', 'virginislands', 'usvirginislands', 'unitedstatesvirginislands'],
  ['um', 'usminoroutlyingislands', 'unitedstatesminoroutlyingislands'],
];

/** Lookup form (CT rule output) → two-letter code. Codes map to themselves. */
export const US_STATE_CODES: ReadonlyMap<string, string> = new Map(
  STATES.flatMap(([code, ...names]) => [[code, code] as const, ...names.map((n) => [n, code] as const)]),
);
