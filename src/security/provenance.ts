// Provenance of a side-effecting call's arguments. Tool output is untrusted data: a document, an
// e-mail or a web page a tool fetched may carry instructions ("pay this account instead"), and a
// model may follow them. So before a call with a side effect runs, each value in its arguments
// that could steer it somewhere new is looked up: a value found in no trusted source (the task
// input, the principal's record, results of tools marked `trusted`) but found in untrusted tool
// output came from that output, and the call waits for a person.
//
// Values looked at, in every string of the arguments: the whole string when it has 6 or more
// characters, and inside any string, IBAN-like account numbers, e-mail addresses, URLs and runs
// of 6 or more digits. Matching ignores case and white space ("DE89 3704..." is "de893704...").
// Numbers are not looked at: amounts are limited by operator policies instead.

export interface OutputSource {
  /** The tool whose output it is. */
  tool: string;
  step: number;
  value: unknown;
}

export interface ProvenanceSources {
  trusted: readonly unknown[];
  untrusted: readonly OutputSource[];
}

export interface UntrustedValue {
  /** Where in the arguments: 'payee', 'lines[2].iban'. */
  path: string;
  kind: 'iban' | 'email' | 'url' | 'digits' | 'text';
  value: string;
  /** The untrusted output it was found in. */
  foundIn: { tool: string; step: number };
}

const minLength = 6;
const patterns: readonly [UntrustedValue['kind'], RegExp][] = [
  ['iban', /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b/gi],
  ['email', /[\w.+-]+@[\w-]+(?:\.[\w-]+)+/g],
  // Without trailing punctuation: "see https://x.example/a, then" names https://x.example/a.
  ['url', /\b(?:https?|ftp):\/\/[^\s"'<>]*[^\s"'<>.,;:!?)\]]/gi],
  ['digits', /\d(?:[ -]?\d){5,}/g],
];

/** Values of `args` that untrusted tool output suggested and no trusted source holds. */
export function untrustedValues(args: unknown, sources: ProvenanceSources): UntrustedValue[] {
  const trusted = corpus(sources.trusted);
  const untrusted = sources.untrusted.map((source) => ({ source, text: corpus([source.value]) }));
  const findings: UntrustedValue[] = [];
  const seen = new Set<string>();
  for (const { path, text } of strings(args, 'args')) {
    for (const candidate of candidates(text)) {
      const needle = normalise(candidate.value);
      if (needle.length < minLength || seen.has(`${path}\u0000${needle}`) || trusted.includes(needle)) continue;
      const origin = untrusted.find((output) => output.text.includes(needle));
      if (!origin) continue;
      seen.add(`${path}\u0000${needle}`);
      // The digits inside a reported account number are not a second finding.
      if (findings.some((finding) => finding.path === pathOf(path) && normalise(finding.value).includes(needle))) continue;
      findings.push({ path: pathOf(path), kind: candidate.kind, value: candidate.value, foundIn: { tool: origin.source.tool, step: origin.source.step } });
    }
  }
  return findings;
}

function candidates(text: string): { kind: UntrustedValue['kind']; value: string }[] {
  const found: { kind: UntrustedValue['kind']; value: string }[] = [];
  const whole = text.trim();
  if (whole.length >= minLength) found.push({ kind: patterns.find(([, pattern]) => new RegExp(`^${pattern.source}$`, 'i').test(whole))?.[0] ?? 'text', value: whole });
  for (const [kind, pattern] of patterns) {
    for (const match of text.matchAll(pattern)) if (match[0] !== whole) found.push({ kind, value: match[0] });
  }
  return found;
}

/** Every string (and number, as text) in the values, normalised, one per line: a value is found only within one string. */
function corpus(values: readonly unknown[]): string {
  const lines: string[] = [];
  for (const value of values) for (const { text } of strings(value, '', true)) lines.push(normalise(text));
  return lines.join('\n');
}

function* strings(value: unknown, path: string, withNumbers = false, depth = 0): Generator<{ path: string; text: string }> {
  if (depth > 64) return;
  if (typeof value === 'string') yield { path, text: value };
  else if (withNumbers && (typeof value === 'number' || typeof value === 'bigint')) yield { path, text: String(value) };
  else if (Array.isArray(value)) for (const [index, item] of value.entries()) yield* strings(item, `${path}[${index}]`, withNumbers, depth + 1);
  else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) yield* strings(item, path ? `${path}.${key}` : key, withNumbers, depth + 1);
  }
}

function pathOf(path: string): string {
  return path.replace(/^args\.?/, '') || '(arguments)';
}

function normalise(text: string): string {
  return text.toLowerCase().replace(/\s+/g, '');
}
