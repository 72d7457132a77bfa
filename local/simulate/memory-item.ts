import type { UpdatePlan } from '../../lambda/core/limiter/expression';
import { idMap } from '../../lambda/core/limiter/item/codec';
import { type Condition, type Operand, type Path, parseCondition, parseUpdate } from './expression-parser';

/**
 * One item in memory, written by the very `UpdatePlan`s the limiter sends to DynamoDB: the
 * condition is evaluated on the item as it is, and only if it holds are the SET and REMOVE clauses
 * applied (all of them or none, as `UpdateItem` does). Values are stored as `unmarshall` returns
 * them (numbers, strings, lists, maps; undefined fields dropped as `removeUndefinedValues` does), so
 * `snapshotFromItem` reads the item as it reads one from the table.
 */
export type Item = Record<string, unknown>;

const MISSING = Symbol('missing');
type Found = unknown | typeof MISSING;

/** Applies `plan` to `item` in place when its condition holds; returns whether it did. */
export function applyPlan(item: Item, plan: UpdatePlan): boolean {
  const condition = parseCondition(plan.condition);
  if (condition && !holds(condition, item, plan)) return false;
  const update = parseUpdate(plan.update);
  // Every operand is read from the item before any clause writes (UpdateItem's semantics).
  const values = update.sets.map((s) => {
    const value = operand(s.value, item, plan);
    if (value === MISSING) throw new Error('expression: SET from an absent attribute');
    return clone(value);
  });
  update.sets.forEach((s, i) => {
    setAt(item, resolve(s.path, plan), values[i]);
  });
  // List elements go from the highest index down, so one REMOVE of [1] and [3] removes those two.
  const removes = update.removes
    .map((p) => resolve(p, plan))
    .sort((a, b) => {
      const x = a[a.length - 1];
      const y = b[b.length - 1];
      return typeof x === 'number' && typeof y === 'number' ? y - x : 0;
    });
  for (const path of removes) removeAt(item, path);
  return true;
}

type Resolved = readonly (string | number)[];

function resolve(path: Path, plan: UpdatePlan): Resolved {
  return path.map((step) => {
    if ('index' in step) return step.index;
    const name = plan.names[step.name];
    if (name === undefined) throw new Error(`expression: no name for ${step.name}`);
    return name;
  });
}

function lookup(item: Item, path: Resolved): Found {
  let at: unknown = item;
  for (const step of path) {
    if (typeof step === 'number') {
      if (!Array.isArray(at) || step >= at.length) return MISSING;
      at = at[step];
    } else {
      if (typeof at !== 'object' || at === null || Array.isArray(at) || !Object.hasOwn(at, step))
        return MISSING;
      at = (at as Item)[step];
    }
  }
  return at;
}

function parentOf(item: Item, path: Resolved): unknown {
  const parent = lookup(item, path.slice(0, -1));
  if (parent === MISSING) {
    // DynamoDB refuses the whole write: "The document path provided in the update expression is invalid".
    throw new Error(`expression: the document path ${path.join('.')} is invalid (no parent)`);
  }
  return parent;
}

function setAt(item: Item, path: Resolved, value: unknown): void {
  const last = path[path.length - 1]!;
  const parent = path.length === 1 ? item : parentOf(item, path);
  if (typeof last === 'number') {
    if (!Array.isArray(parent)) throw new Error(`expression: ${path.join('.')} is not in a list`);
    if (last >= parent.length) parent.push(value);
    else parent[last] = value;
  } else {
    if (typeof parent !== 'object' || parent === null || Array.isArray(parent))
      throw new Error(`expression: ${path.join('.')} is not in a map`);
    (parent as Item)[last] = value;
  }
}

function removeAt(item: Item, path: Resolved): void {
  const last = path[path.length - 1]!;
  const parent = path.length === 1 ? item : lookup(item, path.slice(0, -1));
  if (typeof last === 'number') {
    if (Array.isArray(parent) && last < parent.length) parent.splice(last, 1);
  } else if (typeof parent === 'object' && parent !== null && !Array.isArray(parent)) {
    delete (parent as Item)[last];
  }
}

function operand(o: Operand, item: Item, plan: UpdatePlan): Found {
  switch (o.op) {
    case 'value':
      if (!Object.hasOwn(plan.values, o.key)) throw new Error(`expression: no value for ${o.key}`);
      return plan.values[o.key];
    case 'path':
      return lookup(item, resolve(o.path, plan));
    case 'if_not_exists': {
      const found = lookup(item, resolve(o.path, plan));
      return found === MISSING ? operand(o.fallback, item, plan) : found;
    }
    case 'list_append': {
      const a = operand(o.a, item, plan);
      const b = operand(o.b, item, plan);
      if (!Array.isArray(a) || !Array.isArray(b)) throw new Error('expression: list_append of a non-list');
      return [...a, ...b];
    }
    case 'size': {
      const found = lookup(item, resolve(o.path, plan));
      if (Array.isArray(found) || typeof found === 'string') return found.length;
      if (typeof found === 'object' && found !== null) return Object.keys(found).length;
      return MISSING;
    }
    default: {
      const a = operand(o.a, item, plan);
      const b = operand(o.b, item, plan);
      if (typeof a !== 'number' || typeof b !== 'number')
        throw new Error(`expression: ${o.op} of a non-number (an absent attribute?)`);
      return o.op === '+' ? a + b : a - b;
    }
  }
}

function holds(c: Condition, item: Item, plan: UpdatePlan): boolean {
  switch (c.op) {
    case 'and':
      return holds(c.a, item, plan) && holds(c.b, item, plan);
    case 'or':
      return holds(c.a, item, plan) || holds(c.b, item, plan);
    case 'not':
      return !holds(c.a, item, plan);
    case 'exists':
      return lookup(item, resolve(c.path, plan)) !== MISSING;
    case 'not_exists':
      return lookup(item, resolve(c.path, plan)) === MISSING;
    default: {
      const a = operand(c.a, item, plan);
      const b = operand(c.b, item, plan);
      // A comparison with an absent attribute is false, whichever comparator (DynamoDB).
      if (a === MISSING || b === MISSING) return false;
      if (c.cmp === '=') return same(a, b);
      if (c.cmp === '<>') return !same(a, b);
      // Ordering compares numbers with numbers and strings with strings; else false.
      if (typeof a !== typeof b || (typeof a !== 'number' && typeof a !== 'string')) return false;
      const x = a as number | string;
      const y = b as number | string;
      return c.cmp === '<' ? x < y : c.cmp === '<=' ? x <= y : c.cmp === '>' ? x > y : x >= y;
    }
  }
}

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(clone(a)) === JSON.stringify(clone(b));
}

/** A deep copy without undefined fields, as a value would come back from the table. */
function clone(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(clone);
  if (typeof value === 'object' && value !== null) {
    // A dictionary: a stored map's keys are often request ids (`fl`, `gr`), new on every request.
    const out: Item = idMap();
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = clone(v);
    return out;
  }
  return value;
}
