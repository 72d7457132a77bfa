import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FUNCTIONS, type FunctionKey } from '../../lambda/core/resources';

const read = (file: string) => readFileSync(join(process.cwd(), file), 'utf8');

/** The rows of docs/deploy.md's IAM table, by function: `[limits, connections, requests, queues]`. */
function iamTable(): Record<string, string[]> {
  const section = read('docs/deploy.md').split('## IAM: what each function may do')[1]!.split('\n## ')[0]!;
  const rows = section
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('| function') && !l.startsWith('|---'))
    .map((l) => l.split(' | ').map((c) => c.replace(/^\| |\s*\|$/g, '')));
  return Object.fromEntries(rows.map(([name, ...cells]) => [name!, cells]));
}

const LABELS: Record<FunctionKey, string> = {
  authorizer: 'authorizer',
  connect: 'connect',
  disconnect: 'disconnect',
  message: 'message',
  processor: 'processor',
  reply: 'reply runner',
  replyFailure: 'reply failure',
  sweep: 'sweep',
  admin: 'admin',
};
const COLUMNS = { limits: 0, connections: 1, requests: 2 } as const;

/** Issue 23 item 10: the docs say what the product does and what AWS needs. */
describe('docs/deploy.md', () => {
  it("lists every function's table, index and queue actions as FUNCTIONS grants them", () => {
    const table = iamTable();
    const missing: string[] = [];
    for (const key of Object.keys(FUNCTIONS) as FunctionKey[]) {
      const row = table[LABELS[key]];
      if (!row) {
        missing.push(`${key}: no row`);
        continue;
      }
      const cell = (i: number) => (row[i] === 'as message' ? table.message![i]! : row[i]!);
      const def = FUNCTIONS[key];
      for (const access of def.tables) {
        const text = cell(COLUMNS[access.table]);
        const actions = [...access.actions, ...('indexActions' in access ? access.indexActions : [])];
        for (const action of actions)
          if (!text.includes(`\`${action.split(':')[1]}\``)) missing.push(`${key} ${access.table} ${action}`);
        for (const index of 'indexes' in access ? access.indexes : [])
          if (!text.includes(`\`${index}\``)) missing.push(`${key} ${access.table} index ${index}`);
      }
      for (const access of 'queues' in def ? def.queues : [])
        for (const action of access.actions)
          if (!cell(3).includes(`\`${action.split(':')[1]}\``))
            missing.push(`${key} ${access.queue} ${action}`);
    }
    expect(missing).toEqual([]);
  });

  it('names events:PutEvents on the default bus for exactly the functions that publish (SPEC §9.5)', () => {
    const table = iamTable();
    const other = (key: FunctionKey) => {
      const cell = table[LABELS[key]]![4]!;
      return cell === 'as message' ? table.message![4]! : cell;
    };
    const publishing = (Object.keys(FUNCTIONS) as FunctionKey[]).filter(
      (key) => (FUNCTIONS[key] as { publishesEvents?: boolean }).publishesEvents === true,
    );
    expect(publishing).toEqual(['message', 'processor', 'reply', 'replyFailure', 'sweep', 'admin']);
    for (const key of Object.keys(FUNCTIONS) as FunctionKey[])
      expect([key, /`events:PutEvents` on the (account's )?default( event)? bus/.test(other(key))]).toEqual([
        key,
        publishing.includes(key),
      ]);
  });

  it('shows where the first chat reads the secret and the URL from, and what AWS retains', () => {
    const deploy = read('docs/deploy.md');
    expect(deploy).toContain('JWT_SECRET_ARN=$(output JwtSecretArn)');
    expect(deploy).toContain('WEBSOCKET_URL=$(output WebSocketUrl)');
    expect(deploy).toContain("the console's\n   former *Model access* page is retired");
    expect(deploy).toContain('`TopicKey`');
    expect(deploy).toContain('Cognito access\ntoken has no `aud`');
  });
});

describe('README and docs/configuration.md', () => {
  it('capture only the token with npm run -s, and name real admin operations', () => {
    expect(read('README.md')).toContain('npm run -s token -- --user bob --tier pro');
    const configuration = read('docs/configuration.md');
    expect(configuration).not.toMatch(/admin -- override|seed 00\d/);
    expect(configuration).toContain('capacity = `messagesPerMinute` + `burst`');
  });
});
