// A tiny schema checker: each check appends FastAPI/pydantic-style issues
// ({ loc, msg, type }) and schemas are plain tables of field checks.

export type Loc = (string | number)[];

export interface Issue {
  loc: Loc;
  msg: string;
  type: string;
}

export type Check = (value: unknown, loc: Loc, issues: Issue[]) => void;

export interface Field {
  check: Check;
  required?: boolean;
}

const issue = (loc: Loc, msg: string, type: string): Issue => ({ loc, msg, type });

export const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A field that must be present. */
export const required = (check: Check): Field => ({ check, required: true });

/**
 * An object checked field by field. Fields not in the table are ignored: the spec sets
 * no `additionalProperties`, and the API (pydantic) ignores extra fields.
 */
export function object(fields: Readonly<Record<string, Field | Check>>): Check {
  const table = Object.entries(fields).map(([name, f]) => [name, typeof f === 'function' ? { check: f } : f] as const);
  return (value, loc, issues) => {
    if (!isPlainObject(value)) {
      issues.push(issue(loc, 'value is not a valid dict', 'type_error.dict'));
      return;
    }
    for (const [name, field] of table) {
      const v = value[name];
      if (v === undefined) {
        if (field.required === true) issues.push(issue([...loc, name], 'field required', 'value_error.missing'));
        continue;
      }
      field.check(v, [...loc, name], issues);
    }
  };
}

export function array(item: Check): Check {
  return (value, loc, issues) => {
    if (!Array.isArray(value)) {
      issues.push(issue(loc, 'value is not a valid list', 'type_error.list'));
      return;
    }
    value.forEach((v: unknown, i) => item(v, [...loc, i], issues));
  };
}

/** The spec's `anyOf: [X, X[]]`: a single item or a list of them. */
export const oneOrMany = (item: Check): Check => {
  const many = array(item);
  return (value, loc, issues) => (Array.isArray(value) ? many(value, loc, issues) : item(value, loc, issues));
};

export interface StrRules {
  min?: number;
  max?: number;
  pattern?: RegExp;
  /** Padded base64, checked without a backtracking regex (attachments run to megabytes). */
  base64?: boolean;
  email?: boolean;
  oneOf?: readonly string[];
}

const BASE64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/;
const BASE64_SOURCE = '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$';

export function str(rules: StrRules = {}): Check {
  return (value, loc, issues) => {
    if (typeof value !== 'string') {
      issues.push(issue(loc, 'str type expected', 'type_error.str'));
      return;
    }
    if (rules.oneOf !== undefined && !rules.oneOf.includes(value)) {
      const permitted = rules.oneOf.map((v) => `'${v}'`).join(', ');
      issues.push(issue(loc, `value is not a valid enumeration member; permitted: ${permitted}`, 'type_error.enum'));
      return;
    }
    // code points, as the spec counts; only counted when a bound needs it
    const length = rules.min !== undefined || rules.max !== undefined ? [...value].length : 0;
    if (rules.min !== undefined && length < rules.min) {
      issues.push(issue(loc, `ensure this value has at least ${rules.min} characters`, 'value_error.any_str.min_length'));
      return;
    }
    if (rules.max !== undefined && length > rules.max) {
      issues.push(issue(loc, `ensure this value has at most ${rules.max} characters`, 'value_error.any_str.max_length'));
      return;
    }
    if (rules.pattern !== undefined && !rules.pattern.test(value)) {
      issues.push(issue(loc, `string does not match regex "${rules.pattern.source}"`, 'value_error.str.regex'));
      return;
    }
    if (rules.base64 === true && !(value.length % 4 === 0 && BASE64_CHARS.test(value))) {
      issues.push(issue(loc, `string does not match regex "${BASE64_SOURCE}"`, 'value_error.str.regex'));
      return;
    }
    if (rules.email === true && !isEmail(value)) {
      issues.push(issue(loc, 'value is not a valid email address', 'value_error.email'));
    }
  };
}

/** An integer; `fromString` for query and form values. Booleans and fractions are refused. */
export function int(rules: { min?: number; fromString?: boolean } = {}): Check {
  return (value, loc, issues) => {
    let n: number | undefined;
    if (typeof value === 'number' && Number.isInteger(value)) n = value;
    else if (rules.fromString === true && typeof value === 'string' && /^\s*[-+]?\d+\s*$/.test(value)) n = Number(value);
    if (n === undefined) {
      issues.push(issue(loc, 'value is not a valid integer', 'type_error.integer'));
      return;
    }
    if (rules.min !== undefined && n < rules.min) {
      issues.push(issue(loc, `ensure this value is greater than or equal to ${rules.min}`, 'value_error.number.not_ge'));
    }
  };
}

const TRUE_WORDS = ['1', 'true', 'yes', 'on'];
const FALSE_WORDS = ['0', 'false', 'no', 'off'];

export function bool(rules: { fromString?: boolean } = {}): Check {
  return (value, loc, issues) => {
    if (typeof value === 'boolean') return;
    if (rules.fromString === true && typeof value === 'string') {
      const word = value.toLowerCase();
      if (TRUE_WORDS.includes(word) || FALSE_WORDS.includes(word)) return;
    }
    issues.push(issue(loc, 'value could not be parsed to a boolean', 'type_error.bool'));
  };
}

export const dict = (): Check => (value, loc, issues) => {
  if (!isPlainObject(value)) issues.push(issue(loc, 'value is not a valid dict', 'type_error.dict'));
};

export const parseBool = (value: string): boolean => TRUE_WORDS.includes(value.toLowerCase());

const LABEL = '[\\p{L}\\p{N}](?:[\\p{L}\\p{N}-]{0,61}[\\p{L}\\p{N}])?';
const EMAIL = new RegExp(`^[^\\s@"(),:;<>\\[\\]\\\\]+@${LABEL}(?:\\.${LABEL})+$`, 'u');

/** Close enough to `format: email` (pydantic's email-validator) for a fake: local@domain.tld. */
export function isEmail(value: string): boolean {
  if (value.length > 254 || !EMAIL.test(value)) return false;
  const local = value.slice(0, value.lastIndexOf('@'));
  return local.length <= 64 && !local.startsWith('.') && !local.endsWith('.') && !local.includes('..');
}

export function validate(check: Check, value: unknown, loc: Loc): Issue[] {
  const issues: Issue[] = [];
  check(value, loc, issues);
  return issues;
}
