import { App, type CfnElement, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  FUNCTIONS,
  type FunctionKey,
  QUEUES,
  type QueueKey,
  TABLES,
  type TableDefinition,
  type TableKey,
} from '../../lambda/core/resources';
import { ChatLimiterStack } from '../../lib/chat-limiter-stack';

type Grants = Record<string, string[]>;

/**
 * Every action each function's role allows, by what it is allowed on. This is the whole access of
 * each function: a change here is a change of what a compromised or buggy function could do.
 */
const EXPECTED: Record<FunctionKey, Grants> = {
  authorizer: {
    'own log group': ['logs:CreateLogStream', 'logs:PutLogEvents'],
    'jwt secret': ['secretsmanager:GetSecretValue'],
  },
  connect: {
    'own log group': ['logs:CreateLogStream', 'logs:PutLogEvents'],
    'table limits': ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
    'table connections': ['dynamodb:PutItem'],
  },
  disconnect: {
    'own log group': ['logs:CreateLogStream', 'logs:PutLogEvents'],
    'table connections': ['dynamodb:DeleteItem'],
  },
  message: {
    'own log group': ['logs:CreateLogStream', 'logs:PutLogEvents'],
    'table limits': ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
    'table limits/index/byLine': ['dynamodb:Query'],
    'table connections': ['dynamodb:DeleteItem'],
    'table connections/index/byUser': ['dynamodb:Query'],
    'table requests': ['dynamodb:DeleteItem', 'dynamodb:PutItem', 'dynamodb:Query'],
    'queue requests': ['sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes', 'sqs:SendMessage'],
    '@connections of the stage': ['execute-api:ManageConnections'],
    'default event bus': ['events:PutEvents'],
    'function reply': ['lambda:InvokeFunction'],
  },
  processor: {
    'own log group': ['logs:CreateLogStream', 'logs:PutLogEvents'],
    'table limits': ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
    'table limits/index/byLine': ['dynamodb:Query'],
    'table connections': ['dynamodb:DeleteItem'],
    'table connections/index/byUser': ['dynamodb:Query'],
    // A started request's content is read, an expired one's deleted (issue 22).
    'table requests': ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem'],
    'queue requests': [
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:ReceiveMessage',
    ],
    'queue dlq': ['sqs:SendMessage'],
    '@connections of the stage': ['execute-api:ManageConnections'],
    'default event bus': ['events:PutEvents'],
    'function reply': ['lambda:InvokeFunction'],
  },
  reply: {
    'own log group': ['logs:CreateLogStream', 'logs:PutLogEvents'],
    'table limits': ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
    'table limits/index/byLine': ['dynamodb:Query'],
    'table connections': ['dynamodb:DeleteItem'],
    'table connections/index/byUser': ['dynamodb:Query'],
    'table requests': ['dynamodb:DeleteItem', 'dynamodb:PutItem', 'dynamodb:Query'],
    'queue requests': ['sqs:ChangeMessageVisibility'],
    'queue dlq': ['sqs:SendMessage'],
    '@connections of the stage': ['execute-api:ManageConnections'],
    'default event bus': ['events:PutEvents'],
    // Lambda invokes the on-failure destination with the runner's role.
    'function replyFailure': ['lambda:InvokeFunction'],
  },
  replyFailure: {
    'own log group': ['logs:CreateLogStream', 'logs:PutLogEvents'],
    'table limits': ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
    'table limits/index/byLine': ['dynamodb:Query'],
    'table connections': ['dynamodb:DeleteItem'],
    'table connections/index/byUser': ['dynamodb:Query'],
    'table requests': ['dynamodb:DeleteItem', 'dynamodb:PutItem', 'dynamodb:Query'],
    'queue requests': ['sqs:ChangeMessageVisibility'],
    '@connections of the stage': ['execute-api:ManageConnections'],
    'default event bus': ['events:PutEvents'],
  },
  admin: {
    'own log group': ['logs:CreateLogStream', 'logs:PutLogEvents'],
    'table limits': ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
    'table limits/index/byDaySettled': ['dynamodb:Query'],
    'table connections': ['dynamodb:DeleteItem', 'dynamodb:GetItem'],
    'table connections/index/byUser': ['dynamodb:Query'],
    // A purged request's content is deleted; `usage --history` queries the history items (issue 22).
    'table requests': ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query'],
    'queue requests': ['sqs:GetQueueAttributes'],
    'queue dlq': ['sqs:GetQueueAttributes'],
    '@connections of the stage': ['execute-api:ManageConnections'],
    'default event bus': ['events:PutEvents'],
  },
  sweep: {
    'own log group': ['logs:CreateLogStream', 'logs:PutLogEvents'],
    'table limits': ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
    'table limits/index/byLine': ['dynamodb:Query'],
    'table limits/index/bySweep': ['dynamodb:Query'],
    'table connections': ['dynamodb:DeleteItem'],
    'table connections/index/byUser': ['dynamodb:Query'],
    // A lapsed direct request: the reply its runner kept is read, sent and dropped; a wake-up
    // parked on the slot it freed is released.
    'table requests': ['dynamodb:DeleteItem', 'dynamodb:PutItem', 'dynamodb:Query'],
    'queue requests': ['sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes', 'sqs:SendMessage'],
    '@connections of the stage': ['execute-api:ManageConnections'],
    'default event bus': ['events:PutEvents'],
  },
};

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}

/** Reads each function's role policies back out of the template, resources named by construct. */
function grantsByFunction(stack: Stack, template: Template): Record<FunctionKey, Grants> {
  const logicalId = (c: IConstruct) => stack.getLogicalId(c.node.defaultChild as CfnElement);
  const names = new Map<string, string>();
  for (const key of Object.keys(TABLES) as TableKey[])
    names.set(logicalId(stack.node.findChild('Tables').node.findChild(TABLES[key].id)), `table ${key}`);
  for (const key of Object.keys(QUEUES) as QueueKey[])
    names.set(logicalId(stack.node.findChild('Queues').node.findChild(QUEUES[key].id)), `queue ${key}`);
  const secret = stack.node.tryFindChild('JwtSecret');
  if (secret) names.set(logicalId(secret), 'jwt secret');
  for (const key of Object.keys(FUNCTIONS) as FunctionKey[])
    names.set(
      logicalId(stack.node.findChild('Functions').node.findChild(FUNCTIONS[key].id)),
      `function ${key}`,
    );

  const policies = Object.values(template.findResources('AWS::IAM::Policy')) as {
    Properties: { Roles: { Ref: string }[]; PolicyDocument: { Statement: Statement[] } };
  }[];
  const result = {} as Record<FunctionKey, Grants>;
  for (const key of Object.keys(FUNCTIONS) as FunctionKey[]) {
    const functions = stack.node.findChild('Functions');
    const fn = functions.node.findChild(FUNCTIONS[key].id) as IFunction;
    names.set(logicalId(functions.node.findChild(`${FUNCTIONS[key].id}Logs`)), 'own log group');
    const roleId = logicalId(fn.role!);
    const grants: Grants = {};
    for (const policy of policies) {
      if (!policy.Properties.Roles.some((r) => r.Ref === roleId)) continue;
      for (const statement of policy.Properties.PolicyDocument.Statement) {
        expect(statement.Effect).toBe('Allow');
        const resources = Array.isArray(statement.Resource) ? statement.Resource : [statement.Resource];
        for (const resource of resources) {
          const name = describeResource(resource, names);
          grants[name] = [...(grants[name] ?? []), ...[statement.Action].flat()].sort();
        }
      }
    }
    result[key] = grants;
  }
  return result;
}

/** `table connections/index/byUser` for `${Connections.Arn}/index/byUser`, and so on. */
function describeResource(resource: unknown, names: Map<string, string>): string {
  const json = JSON.stringify(resource);
  if (json.includes('/@connections/')) return '@connections of the stage';
  if (json.includes(':event-bus/default')) return 'default event bus';
  const id = [...names.keys()].find((logical) => json.includes(`"${logical}"`));
  if (!id) return json;
  const join = (resource as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
  const suffix = join ? join[1].filter((part): part is string => typeof part === 'string').join('') : '';
  return `${names.get(id)}${suffix}`;
}

describe('least privilege per function', () => {
  let stack: Stack;
  let template: Template;
  beforeAll(() => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    stack = new ChatLimiterStack(app, 'Test', { env: { account: '123456789012', region: 'eu-west-1' } });
    template = Template.fromStack(stack);
  }, 60_000);

  it('grants each function exactly the actions it calls, on the resources it calls them on', () => {
    expect(grantsByFunction(stack, template)).toEqual(EXPECTED);
  });

  it('grants the actions listed in FUNCTIONS, so lib and the definition cannot drift apart', () => {
    const granted = grantsByFunction(stack, template);
    for (const key of Object.keys(FUNCTIONS) as FunctionKey[]) {
      const def = FUNCTIONS[key];
      for (const access of def.tables) {
        expect(granted[key][`table ${access.table}`]).toEqual([...access.actions].sort());
        const table: TableDefinition = TABLES[access.table];
        for (const index of table.globalIndexes ?? []) {
          const named =
            !('indexes' in access) || (access.indexes as readonly string[]).includes(index.indexName);
          const indexActions = 'indexActions' in access && named ? [...access.indexActions] : undefined;
          expect(granted[key][`table ${access.table}/index/${index.indexName}`]).toEqual(indexActions);
        }
      }
      for (const access of 'queues' in def ? def.queues : [])
        expect(granted[key][`queue ${access.queue}`]).toEqual([...access.actions].sort());
    }
  });

  it('gives no function a table-wide read, a batch write, a wildcard action or a wildcard index', () => {
    const json = JSON.stringify(template.findResources('AWS::IAM::Policy'));
    for (const broad of ['dynamodb:Scan', 'dynamodb:Batch', 'dynamodb:*', 'sqs:*', '/index/*', 'GetQueueUrl'])
      expect(json).not.toContain(broad);
  });
});
