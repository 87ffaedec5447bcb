/**
 * US states, DC and the inhabited territories (plus the minor outlying islands), by USPS code.
 * This is our ST rule, not ISO data, so a small table in code is the source of truth.
 * Names are written in their lookup form: lowercase letters only (the CT rule applied).
 */
const STATES: ReadonlyArray<readonly [code: string, ...names: string[]]> = [
  ['al', 'alabama'], ['ak', 'alaska'], ['az', 'arizona'], ['ar', 'arkansas'], ['ca', 'california'],
  ['co', 'colorado'], ['ct', 'connecticut'], ['de', 'delaware'], ['fl', 'florida'], ['ga', 'georgia'],
  ['hi', 'hawaii'], ['id', 'idaho'], ['il', 'illinois'], ['in', 'indiana'], ['ia', 'iowa'],
  ['ks', 'kansas'], ['ky', 'kentucky'], ['la', 'louisiana'], ['me', 'maine'], ['md', 'maryland'],
  ['ma', 'massachusetts'], ['mi', 'michigan'], ['mn', 'minnesota'], ['ms', 'mississippi'], ['mo', 'missouri'],
  ['mt', 'montana'], ['ne', 'nebraska'], ['nv', 'nevada'], ['nh', 'newhampshire'], ['nj', 'newjersey'],
  ['nm', 'newmexico'], ['ny', 'newyork'], ['nc', 'northcarolina'], ['nd', 'northdakota'], ['oh', 'ohio'],
  ['ok', 'oklahoma'], ['or', 'oregon'], ['pa', 'pennsylvania'], ['ri', 'rhodeisland'], ['sc', 'southcarolina'],
  ['sd', 'southdakota'], ['tn', 'tennessee'], ['tx', 'texas'], ['ut', 'utah'], ['vt', 'vermont'],
  ['va', 'virginia'], ['wa', 'washington'], ['wv', 'westvirginia'], ['wi', 'wisconsin'], ['wy', 'wyoming'],
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
