/**
 * A parser for the subset of DynamoDB's update and condition expressions the limiter's plans use
 * (lambda/core/limiter/expression.ts writes them): `SET path = operand [+|- operand], …`,
 * `REMOVE path, …`, operands `:v`, paths `#n`, `#n.#m`, `#n[3]`, `if_not_exists(path, operand)`,
 * `list_append(a, b)`; conditions with `AND`, `OR`, `NOT`, parentheses, `= <> < <= > >=`,
 * `attribute_exists`, `attribute_not_exists` and `size`. Anything else is refused by name, so a
 * plan that starts using more of the language fails loudly here instead of being misread.
 */

/** One step of a document path: an attribute or map key (a `#n` placeholder), or a list index. */
export type PathStep = { readonly name: string } | { readonly index: number };
export type Path = readonly PathStep[];

export type Operand =
  | { readonly op: 'path'; readonly path: Path }
  | { readonly op: 'value'; readonly key: string }
  | { readonly op: 'if_not_exists'; readonly path: Path; readonly fallback: Operand }
  | { readonly op: 'list_append'; readonly a: Operand; readonly b: Operand }
  | { readonly op: 'size'; readonly path: Path }
  | { readonly op: '+' | '-'; readonly a: Operand; readonly b: Operand };

export type Comparator = '=' | '<>' | '<' | '<=' | '>' | '>=';

export type Condition =
  | { readonly op: 'and' | 'or'; readonly a: Condition; readonly b: Condition }
  | { readonly op: 'not'; readonly a: Condition }
  | { readonly op: 'exists' | 'not_exists'; readonly path: Path }
  | { readonly op: 'compare'; readonly cmp: Comparator; readonly a: Operand; readonly b: Operand };

export interface ParsedUpdate {
  readonly sets: readonly { readonly path: Path; readonly value: Operand }[];
  readonly removes: readonly Path[];
}

const TOKEN = /\s*(<>|<=|>=|[=<>(),.[\]+-]|#[A-Za-z0-9_]+|:[A-Za-z0-9_]+|[A-Za-z_][A-Za-z0-9_]*|\d+)/y;

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    if (/^\s*$/.test(text.slice(TOKEN.lastIndex))) break;
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(text);
    if (!m) throw new Error(`expression: cannot read "${text.slice(at, at + 20)}" in "${text}"`);
    tokens.push(m[1]!);
  }
  return tokens;
}

class Reader {
  private i = 0;
  constructor(
    private readonly tokens: string[],
    private readonly text: string,
  ) {}
  peek(): string | undefined {
    return this.tokens[this.i];
  }
  peekUpper(): string | undefined {
    return this.tokens[this.i]?.toUpperCase();
  }
  next(): string {
    const t = this.tokens[this.i++];
    if (t === undefined) throw new Error(`expression: unexpected end of "${this.text}"`);
    return t;
  }
  expect(token: string): void {
    const t = this.next();
    if (t !== token) throw new Error(`expression: expected "${token}", got "${t}" in "${this.text}"`);
  }
  done(): boolean {
    return this.i >= this.tokens.length;
  }
}

function readPath(r: Reader): Path {
  const first = r.next();
  if (!first.startsWith('#')) throw new Error(`expression: a path starts with a #name, got "${first}"`);
  const steps: PathStep[] = [{ name: first }];
  for (;;) {
    if (r.peek() === '.') {
      r.next();
      const name = r.next();
      if (!name.startsWith('#')) throw new Error(`expression: a path step is a #name, got "${name}"`);
      steps.push({ name });
    } else if (r.peek() === '[') {
      r.next();
      steps.push({ index: Number(r.next()) });
      r.expect(']');
    } else return steps;
  }
}

function readTerm(r: Reader): Operand {
  const t = r.peek();
  if (t?.startsWith(':')) return { op: 'value', key: r.next() };
  if (t?.startsWith('#')) return { op: 'path', path: readPath(r) };
  const fn = r.next();
  r.expect('(');
  let operand: Operand;
  if (fn === 'if_not_exists') {
    const path = readPath(r);
    r.expect(',');
    operand = { op: 'if_not_exists', path, fallback: readOperand(r) };
  } else if (fn === 'list_append') {
    const a = readOperand(r);
    r.expect(',');
    operand = { op: 'list_append', a, b: readOperand(r) };
  } else if (fn === 'size') {
    operand = { op: 'size', path: readPath(r) };
  } else throw new Error(`expression: function "${fn}" is not supported`);
  r.expect(')');
  return operand;
}

function readOperand(r: Reader): Operand {
  let a = readTerm(r);
  while (r.peek() === '+' || r.peek() === '-') {
    const op = r.next() as '+' | '-';
    a = { op, a, b: readTerm(r) };
  }
  return a;
}

const COMPARATORS = new Set(['=', '<>', '<', '<=', '>', '>=']);

function readPrimary(r: Reader): Condition {
  const t = r.peekUpper();
  if (t === 'NOT') {
    r.next();
    return { op: 'not', a: readPrimary(r) };
  }
  if (t === '(') {
    r.next();
    const inner = readOr(r);
    r.expect(')');
    return inner;
  }
  if (t === 'ATTRIBUTE_EXISTS' || t === 'ATTRIBUTE_NOT_EXISTS') {
    r.next();
    r.expect('(');
    const path = readPath(r);
    r.expect(')');
    return { op: t === 'ATTRIBUTE_EXISTS' ? 'exists' : 'not_exists', path };
  }
  const a = readOperand(r);
  const cmp = r.next();
  if (!COMPARATORS.has(cmp)) throw new Error(`expression: comparator "${cmp}" is not supported`);
  return { op: 'compare', cmp: cmp as Comparator, a, b: readOperand(r) };
}

function readAnd(r: Reader): Condition {
  let a = readPrimary(r);
  while (r.peekUpper() === 'AND') {
    r.next();
    a = { op: 'and', a, b: readPrimary(r) };
  }
  return a;
}

function readOr(r: Reader): Condition {
  let a = readAnd(r);
  while (r.peekUpper() === 'OR') {
    r.next();
    a = { op: 'or', a, b: readAnd(r) };
  }
  return a;
}

const conditions = new Map<string, Condition | undefined>();
const updates = new Map<string, ParsedUpdate>();

/** The condition of `text` (none for an empty one), parsed once per distinct text. */
export function parseCondition(text: string): Condition | undefined {
  if (conditions.has(text)) return conditions.get(text);
  let parsed: Condition | undefined;
  if (text.trim() !== '') {
    const r = new Reader(tokenize(text), text);
    parsed = readOr(r);
    if (!r.done()) throw new Error(`expression: unexpected "${r.peek()}" in "${text}"`);
  }
  conditions.set(text, parsed);
  return parsed;
}

/** The SET and REMOVE clauses of `text`, parsed once per distinct text. */
export function parseUpdate(text: string): ParsedUpdate {
  const cached = updates.get(text);
  if (cached) return cached;
  const r = new Reader(tokenize(text), text);
  const sets: { path: Path; value: Operand }[] = [];
  const removes: Path[] = [];
  while (!r.done()) {
    const clause = r.next().toUpperCase();
    if (clause !== 'SET' && clause !== 'REMOVE')
      throw new Error(`expression: clause "${clause}" is not supported`);
    for (;;) {
      const path = readPath(r);
      if (clause === 'SET') {
        r.expect('=');
        sets.push({ path, value: readOperand(r) });
      } else removes.push(path);
      if (r.peek() !== ',') break;
      r.next();
    }
  }
  const parsed = { sets, removes };
  updates.set(text, parsed);
  return parsed;
}
