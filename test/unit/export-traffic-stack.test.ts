import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import {
  AccessDeniedException,
  CloudWatchLogsClient,
  GetQueryResultsCommand,
  type GetQueryResultsCommandInput,
  type GetQueryResultsResponse,
  type ResultField,
  StartQueryCommand,
  type StartQueryCommandInput,
} from '@aws-sdk/client-cloudwatch-logs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runExportTrafficCommand, trafficOf } from '../../local/admin/export-traffic-command';
import { requestLineOf, splitWindow } from '../../local/admin/stack-request-log';
import type { RequestLogLine } from '../../local/request-log';
import { trafficLine } from '../../local/simulate/traffic';

/**
 * `npm run admin -- export-traffic --stack NAME`: the deployed stack's request log through CloudWatch
 * Logs Insights, with CloudFormation and CloudWatch Logs mocked (no account here). The mock answers
 * as Logs Insights does: only the events of the query's whole seconds (both ends included), oldest
 * first, every value a string, at most `cap` rows a query, 10,000 a page.
 */
const NOW = Date.parse('2026-12-03T18:00:00.000Z');
const HOUR_AGO = NOW - 3_600_000;
const MESSAGE_GROUP = 'ChatLimiter-FunctionsMessageLogs1A2B3C4D-abcdef';
const REPLY_GROUP = 'ChatLimiter-FunctionsReplyRunnerLogs5E6F7A8B-ghijkl';
/** Words no exported line may hold. */
const SECRET = 'zebra-quartz-secret';
const QUERY =
  'fields @timestamp, timestamp, message, userId, requestId, tier, team, model, inputTokens, outputTokens' +
  ' | filter message in ["sendMessage", "request settled"] | sort @timestamp asc | limit 100000';

const cfn = mockClient(CloudFormationClient);
const logs = mockClient(CloudWatchLogsClient);

function stackWith(outputs: Record<string, string>): void {
  cfn.on(DescribeStacksCommand, { StackName: 'ChatLimiter' }).resolves({
    Stacks: [
      {
        StackName: 'ChatLimiter',
        CreationTime: new Date(NOW),
        StackStatus: 'CREATE_COMPLETE',
        Outputs: Object.entries(outputs).map(([OutputKey, OutputValue]) => ({ OutputKey, OutputValue })),
      },
    ],
  });
}

/** A Logs Insights row of a log line, as GetQueryResults gives it (`@message` would hold the raw line). */
function rowOf(line: RequestLogLine, i: number): ResultField[] {
  const at = new Date(String(line.timestamp)).toISOString().replace('T', ' ').replace('Z', '');
  return [
    { field: '@timestamp', value: at },
    ...Object.entries(line).map(([field, value]) => ({ field, value: String(value) })),
    { field: '@message', value: `${JSON.stringify(line)} ${SECRET}` },
    { field: '@ptr', value: `ptr-${i}` },
  ];
}

/**
 * Logs Insights over `lines`: each query is Running at its first GetQueryResults and Complete after,
 * returns at most `cap` rows and pages them 10,000 at a time. Rows of the same millisecond come
 * settle first (Logs Insights promises no order among them): the export must still join them.
 */
function logsInsightsOver(lines: readonly RequestLogLine[], cap = 100_000): void {
  const queries = new Map<string, { rows: ResultField[][]; matched: number; polled: boolean }>();
  const timed = lines
    .map((line, i) => ({ line, i, ms: Date.parse(String(line.timestamp)) }))
    .sort(
      (a, b) =>
        a.ms - b.ms ||
        (a.line.message === 'sendMessage' ? 1 : 0) - (b.line.message === 'sendMessage' ? 1 : 0),
    );
  logs.on(StartQueryCommand).callsFake((input: StartQueryCommandInput) => {
    const queryId = `q${queries.size + 1}`;
    const inWindow = timed.filter(
      ({ ms }) => Math.floor(ms / 1000) >= input.startTime! && Math.floor(ms / 1000) <= input.endTime!,
    );
    queries.set(queryId, {
      rows: inWindow.slice(0, cap).map(({ line, i }) => rowOf(line, i)),
      matched: inWindow.length,
      polled: false,
    });
    return { queryId };
  });
  logs.on(GetQueryResultsCommand).callsFake((input: GetQueryResultsCommandInput): GetQueryResultsResponse => {
    const query = queries.get(input.queryId!)!;
    if (!query.polled) {
      query.polled = true;
      return { status: 'Running', results: [] };
    }
    const from = input.nextToken ? Number(input.nextToken) : 0;
    const to = from + (input.maxItems ?? 1000);
    return {
      status: 'Complete',
      results: query.rows.slice(from, to),
      statistics: { recordsMatched: query.matched, bytesScanned: 2_000_000 },
      ...(to < query.rows.length ? { nextToken: String(to) } : {}),
    };
  });
}

/** Runs the command with a clock that only the polling's sleeps move. */
async function exportTraffic(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const sleeps: number[] = [];
  let clock = NOW;
  const code = await runExportTrafficCommand(
    ['export-traffic', ...args],
    { out: (s) => out.push(s), err: (s) => err.push(s) },
    () => NOW,
    {
      pollMs: 1000,
      maxWaitMs: 5000,
      nowMs: () => clock,
      sleep: async (ms) => {
        sleeps.push(ms);
        clock += ms;
      },
    },
  );
  return { code, out, err, sleeps };
}

const STACK = ['--stack', 'ChatLimiter', '--region', 'eu-west-1', '--since', '1h'];
const at = (ms: number) => new Date(ms).toISOString();
/** Alice's request at `ms`, settled `settleMs` later (a same-millisecond settle when 0). */
function request(userId: string, requestId: string, ms: number, settleMs = 800): RequestLogLine[] {
  return [
    {
      message: 'sendMessage',
      timestamp: at(ms),
      userId,
      requestId,
      outcome: 'handed-off',
      tier: 'pro',
      team: 'research',
    },
    {
      message: 'request settled',
      timestamp: at(ms + settleMs),
      userId,
      requestId,
      tier: 'pro',
      model: 'large',
      source: 'direct',
      inputTokens: 12,
      outputTokens: 30,
    },
  ];
}

describe('export-traffic --stack', () => {
  beforeEach(() => {
    stackWith({
      AdminFunctionName: 'ChatLimiter-FunctionsAdmin-xyz',
      MessageLogGroupName: MESSAGE_GROUP,
      ReplyRunnerLogGroupName: REPLY_GROUP,
    });
  });
  afterEach(() => {
    cfn.reset();
    logs.reset();
  });

  const LOG: RequestLogLine[] = [
    // Before --since: a settle whose arrival is older than the window.
    ...request('old', 'o1', HOUR_AGO - 5000, 6000).slice(1),
    ...request('alice', 'a1', HOUR_AGO + 10_000),
    {
      message: 'sendMessage',
      timestamp: at(HOUR_AGO + 11_000),
      userId: 'alice',
      requestId: 'a2',
      tier: 'free',
    },
    ...request('bob', 'b1', HOUR_AGO + 20_000, 0),
    ...request('carol', 'c1', NOW - 2000),
  ];

  it("queries both functions' log groups for the window, polls, and writes what the local join writes", async () => {
    logsInsightsOver(LOG);
    const { code, out, err, sleeps } = await exportTraffic(...STACK);
    expect(code).toBe(0);
    expect(logs.commandCalls(StartQueryCommand).map((c) => c.args[0].input)).toEqual([
      {
        logGroupNames: [MESSAGE_GROUP, REPLY_GROUP],
        startTime: HOUR_AGO / 1000,
        endTime: NOW / 1000,
        queryString: QUERY,
      },
    ]);
    expect(sleeps).toEqual([1000]);
    const local = trafficOf(LOG, HOUR_AGO);
    expect(out).toEqual(local.requests.map(trafficLine));
    expect(out).toEqual([
      `{"at":"${at(HOUR_AGO + 10_000)}","userId":"alice","tier":"pro","team":"research","model":"large","inputTokens":12,"outputTokens":30}`,
      `{"at":"${at(HOUR_AGO + 20_000)}","userId":"bob","tier":"pro","team":"research","model":"large","inputTokens":12,"outputTokens":30}`,
      `{"at":"${at(NOW - 2000)}","userId":"carol","tier":"pro","team":"research","model":"large","inputTokens":12,"outputTokens":30}`,
    ]);
    expect(out.join('\n')).not.toContain(SECRET);
    expect(err).toEqual([
      'export-traffic: 1 Logs Insights query, 2.0 MB scanned',
      'export-traffic: 3 settled requests; 1 received but never settled (refused, expired or running) are not in it',
    ]);
  });

  it('reads a large result a page at a time, in one query', async () => {
    const big = Array.from({ length: 12_500 }, (_, i) =>
      request(`u${i % 50}`, `r${i}`, HOUR_AGO + i * 200),
    ).flat();
    logsInsightsOver(big);
    const { code, out } = await exportTraffic(...STACK);
    expect(code).toBe(0);
    expect(logs.commandCalls(StartQueryCommand)).toHaveLength(1);
    // One poll while Running, then the three pages of 25,000 rows.
    expect(logs.commandCalls(GetQueryResultsCommand).map((c) => c.args[0].input)).toEqual([
      { queryId: 'q1', maxItems: 10_000 },
      { queryId: 'q1', maxItems: 10_000 },
      { queryId: 'q1', nextToken: '10000', maxItems: 10_000 },
      { queryId: 'q1', nextToken: '20000', maxItems: 10_000 },
    ]);
    expect(out).toHaveLength(12_500);
    expect(out).toEqual(trafficOf(big, HOUR_AGO).requests.map(trafficLine));
  });

  it('splits a window that matched more than a query returns, and loses nothing', async () => {
    // 15,000 lines over the hour where a query returns 10,000 (results that do not page).
    const lines = Array.from({ length: 7500 }, (_, i) =>
      request(`u${i % 40}`, `r${i}`, HOUR_AGO + i * 400),
    ).flat();
    logsInsightsOver(lines, 10_000);
    const { code, out, err } = await exportTraffic(...STACK);
    expect(code).toBe(0);
    const start = HOUR_AGO / 1000;
    expect(
      logs.commandCalls(StartQueryCommand).map((c) => [c.args[0].input.startTime, c.args[0].input.endTime]),
    ).toEqual([
      [start, start + 3600],
      [start, start + 1799],
      [start + 1800, start + 3600],
    ]);
    expect(out).toEqual(trafficOf(lines, HOUR_AGO).requests.map(trafficLine));
    expect(out).toHaveLength(7500);
    expect(err[0]).toBe('export-traffic: 3 Logs Insights queries, 6.0 MB scanned');
  });

  it('says on stderr when a single second holds more than a query returns', async () => {
    const busy = HOUR_AGO + 600_000;
    const lines = [
      ...request('alice', 'a1', HOUR_AGO + 1000),
      ...Array.from({ length: 10_005 }, (_, i) => ({
        message: 'sendMessage',
        timestamp: at(busy + (i % 1000)),
        userId: `u${i}`,
        requestId: 'r',
        tier: 'free',
      })),
    ];
    logsInsightsOver(lines, 10_000);
    const { code, out, err } = await exportTraffic(...STACK);
    expect(code).toBe(0);
    expect(out).toHaveLength(1);
    expect(err).toEqual([
      `export-traffic: ${at(busy)} holds 10005 request lines, more than one query returns (10000): 5 are not in the export`,
      'export-traffic: 25 Logs Insights queries, 50.0 MB scanned',
      'export-traffic: 1 settled requests; 10000 received but never settled (refused, expired or running) are not in it',
    ]);
    // Twelve splits in halves around the busy second (3601 s, 1800, 900, … 4, 2), down to that second.
    const windows = logs
      .commandCalls(StartQueryCommand)
      .map((c) => [c.args[0].input.startTime, c.args[0].input.endTime]);
    expect(windows).toHaveLength(25);
    expect(windows).toContainEqual([busy / 1000, busy / 1000]);
  });

  it('a Failed query is exit 1 with the query and its window', async () => {
    logs.on(StartQueryCommand).resolves({ queryId: 'q1' });
    logs.on(GetQueryResultsCommand).resolves({ status: 'Failed', results: [] });
    const { code, out, err } = await exportTraffic(...STACK);
    expect(code).toBe(1);
    expect(out).toEqual([]);
    expect(err).toEqual([`admin: Logs Insights query q1 (${at(HOUR_AGO)} to ${at(NOW + 999)}) ended Failed`]);
  });

  it('gives up on a query still running after the wait, exit 1', async () => {
    logs.on(StartQueryCommand).resolves({ queryId: 'q1' });
    logs.on(GetQueryResultsCommand).resolves({ status: 'Running', results: [] });
    const { code, err, sleeps } = await exportTraffic(...STACK);
    expect(code).toBe(1);
    expect(sleeps).toEqual([1000, 1000, 1000, 1000, 1000]);
    expect(err).toEqual([
      `admin: Logs Insights query q1 (${at(HOUR_AGO)} to ${at(NOW + 999)}) is still Running after 5 s: ` +
        'try a shorter --since, or see the query in the CloudWatch console',
    ]);
  });

  it("passes on AWS's refusal (no logs:StartQuery), exit 1", async () => {
    logs.on(StartQueryCommand).rejects(
      new AccessDeniedException({
        message: 'User is not authorized to perform: logs:StartQuery',
        $metadata: {},
      }),
    );
    const { code, err } = await exportTraffic(...STACK);
    expect(code).toBe(1);
    expect(err).toEqual([
      'admin: CloudWatch Logs AccessDeniedException: User is not authorized to perform: logs:StartQuery',
    ]);
  });

  it('a stack without the log group outputs (deployed before them) is exit 1, no query', async () => {
    cfn.reset();
    stackWith({ AdminFunctionName: 'ChatLimiter-FunctionsAdmin-xyz' });
    const { code, err } = await exportTraffic(...STACK);
    expect(code).toBe(1);
    expect(err).toEqual([
      'admin: stack ChatLimiter has no MessageLogGroupName output: it was deployed before export-traffic could read it; deploy it again',
    ]);
    expect(logs.commandCalls(StartQueryCommand)).toHaveLength(0);
  });

  it('refuses --stack with --endpoint, --function, and --region alone (exit 2)', async () => {
    for (const args of [
      ['--stack', 'ChatLimiter', '--endpoint', 'http://127.0.0.1:1'],
      ['--function', 'ChatLimiter-FunctionsAdmin-xyz'],
      ['--region', 'eu-west-1'],
    ]) {
      const { code, err } = await exportTraffic(...args);
      expect(code).toBe(2);
      expect(err[0]).toMatch(
        /^admin: (--stack .* choose one|export-traffic reads the functions' log groups|--region goes with --stack)/,
      );
    }
    expect(cfn.commandCalls(DescribeStacksCommand)).toHaveLength(0);
  });
});

describe('Logs Insights rows as request lines', () => {
  it('keeps the request fields only, the counts as numbers, and the event time without a timestamp', () => {
    expect(
      requestLineOf([
        { field: '@timestamp', value: '2026-12-03 17:00:01.250' },
        { field: 'message', value: 'request settled' },
        { field: 'userId', value: 'alice' },
        { field: 'requestId', value: '007' },
        { field: 'inputTokens', value: '12' },
        { field: 'outputTokens', value: '1.5' },
        { field: '@message', value: SECRET },
        { field: 'text', value: SECRET },
        { field: '@ptr', value: 'p' },
      ]),
    ).toEqual({
      timestamp: '2026-12-03T17:00:01.250Z',
      message: 'request settled',
      userId: 'alice',
      requestId: '007',
      inputTokens: 12,
      // Not a count: left a string, which the join refuses.
      outputTokens: '1.5',
    });
  });

  it('splits a window into whole seconds that cover it once', () => {
    expect(splitWindow({ startSec: 100, endSec: 100 + 3600 }, 200_000)).toEqual([
      { startSec: 100, endSec: 1299 },
      { startSec: 1300, endSec: 2499 },
      { startSec: 2500, endSec: 3700 },
    ]);
    expect(splitWindow({ startSec: 7, endSec: 8 }, 10_001)).toEqual([
      { startSec: 7, endSec: 7 },
      { startSec: 8, endSec: 8 },
    ]);
  });
});
