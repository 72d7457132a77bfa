/** An UpdateItem in plain data: the adapter marshals the values and sends it. */
export interface UpdatePlan {
  readonly update: string;
  readonly condition: string;
  readonly names: Record<string, string>;
  readonly values: Record<string, unknown>;
}

/** `#n<i>` and `:v<i>`, made once: every plan asks for dozens (the simulator for millions). */
const NAME_KEYS: string[] = [];
const VALUE_KEYS: string[] = [];
const placeholder = (keys: string[], prefix: string, i: number): string => {
  for (let k = keys.length; k <= i; k++) keys.push(`${prefix}${k}`);
  return keys[i]!;
};

/** Collects placeholders so each plan reads like the expression it sends. */
export class ExpressionWriter {
  private readonly names: Record<string, string> = {};
  /** Each attribute's placeholder: a plan names dozens, and each is asked for more than once. */
  private readonly keys = new Map<string, string>();
  private readonly values: Record<string, unknown> = {};
  private readonly sets: string[] = [];
  private readonly removes: string[] = [];
  private readonly conditions: string[] = [];
  private valueCount = 0;

  name(attribute: string): string {
    const existing = this.keys.get(attribute);
    if (existing) return existing;
    const key = placeholder(NAME_KEYS, '#n', this.keys.size);
    this.names[key] = attribute;
    this.keys.set(attribute, key);
    return key;
  }

  value(value: unknown): string {
    const key = placeholder(VALUE_KEYS, ':v', this.valueCount++);
    this.values[key] = value;
    return key;
  }

  set(...clauses: string[]): void {
    this.sets.push(...clauses);
  }

  remove(...paths: string[]): void {
    this.removes.push(...paths);
  }

  condition(clause: string): void {
    this.conditions.push(clause);
  }

  build(): UpdatePlan {
    const update = [
      this.sets.length ? `SET ${this.sets.join(', ')}` : '',
      this.removes.length ? `REMOVE ${this.removes.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join(' ');
    return { update, condition: this.conditions.join(' AND '), names: this.names, values: this.values };
  }
}
