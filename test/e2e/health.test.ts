import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { HealthReport } from '../../lambda/core/admin';
import { runAdminCli } from '../../local/admin/admin-cli';
import type { LocalStack } from '../../local/stack';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy';
import { startTestStack } from '../support/local-stack';

/** `GET /health` and `npm run admin -- health` (SPEC §8 v3), with DynamoDB there and taken away. */
describe('health', () => {
  let stack: LocalStack;
  let dynamo: FaultProxy;
  beforeAll(async () => {
    dynamo = await startFaultProxy(inject('dynamodbEndpoint'));
    stack = await startTestStack({}, { dynamodbEndpoint: dynamo.endpoint });
  });
  afterAll(async () => {
    dynamo?.restore();
    await stack?.stop();
    await dynamo?.stop();
  });

  async function getHealth(): Promise<{ status: number; report: HealthReport }> {
    const response = await fetch(`${stack.httpUrl}/health`);
    expect(response.headers.get('content-type')).toBe('application/json');
    return { status: response.status, report: (await response.json()) as HealthReport };
  }

  async function adminHealth(...args: string[]): Promise<{ code: number; out: string }> {
    let out = '';
    const code = await runAdminCli(['health', '--endpoint', stack.httpUrl, ...args], {
      out: (s) => {
        out += s;
      },
      err: (s) => {
        out += s;
      },
    });
    return { code, out };
  }

  it('GET /health answers 200 with every table and queue answering, the DLQ depth and the breaker', async () => {
    const { status, report } = await getHealth();
    expect(status).toBe(200);
    expect(report).toMatchObject({
      healthy: true,
      tables: { limits: { ok: true }, connections: { ok: true }, requests: { ok: true } },
      queues: { requests: { ok: true, depth: 0 }, dlq: { ok: true, depth: 0 } },
      breaker: { state: 'closed', scope: 'admin function instance' },
    });
  });

  it('npm run admin -- health prints one line per resource and exits 0', async () => {
    const { code, out } = await adminHealth();
    expect(code).toBe(0);
    expect(out).toMatch(/^health: ok \(/);
    for (const name of ['table limits', 'table connections', 'table requests', 'queue requests', 'queue dlq'])
      expect(out).toMatch(new RegExp(`  ${name} +ok `));
    expect(out).toContain('queue dlq');
    expect(out).toContain('depth 0');
    expect(out).toContain('limiter breaker    closed (as the admin function instance sees it)');
    const json = await adminHealth('--json');
    expect(JSON.parse(json.out)).toMatchObject({ ok: true, operation: 'health', result: { healthy: true } });
  });

  it('with DynamoDB cut, reports every table as not answering and answers 503, then recovers', async () => {
    dynamo.cut();
    try {
      const { status, report } = await getHealth();
      expect(status).toBe(503);
      expect(report.healthy).toBe(false);
      for (const table of ['limits', 'connections', 'requests'] as const) {
        expect(report.tables[table].ok).toBe(false);
        expect(report.tables[table].error).toBeTruthy();
      }
      // SQS is not behind the proxy: the queues still answer.
      expect(report.queues).toMatchObject({ requests: { ok: true }, dlq: { ok: true, depth: 0 } });
      const cli = await adminHealth();
      expect(cli.code).toBe(1);
      expect(cli.out).toMatch(/^health: UNHEALTHY/);
      expect(cli.out).toMatch(/ {2}table limits +FAIL /);
    } finally {
      dynamo.restore();
    }
    expect((await getHealth()).status).toBe(200);
  });
});
