import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { LocalError } from '../errors';

/**
 * A deployed stack's outputs (lib/chat-limiter-stack.ts: WebSocketUrl, AdminFunctionName,
 * JwtSecretArn, …), read with the caller's own AWS credentials. The commands that take `--stack`
 * (admin, smoke, token) find everything they need here.
 */
export async function readStackOutputs(
  stackName: string,
  region: string | undefined,
): Promise<Readonly<Record<string, string>>> {
  const cfn = new CloudFormationClient({ region });
  const { Stacks } = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
  const stack = Stacks?.[0];
  if (!stack) throw new StackOutputError(`stack ${stackName} not found`);
  const outputs: Record<string, string> = {};
  for (const o of stack.Outputs ?? []) if (o.OutputKey && o.OutputValue) outputs[o.OutputKey] = o.OutputValue;
  return outputs;
}

/**
 * One output by name. CDK may suffix an output's key in nested scopes, so a key that starts with
 * the name counts too.
 */
export function stackOutput(
  outputs: Readonly<Record<string, string>>,
  name: string,
  stackName: string,
): string {
  const key =
    Object.keys(outputs).find((k) => k === name) ?? Object.keys(outputs).find((k) => k.startsWith(name));
  if (!key) throw new StackOutputError(`stack ${stackName} has no ${name} output`);
  return outputs[key]!;
}

/** The stack is missing, or lacks an output a command needs. */
export class StackOutputError extends LocalError {}

/**
 * The HS256 secret of a stack in secret mode, read from Secrets Manager with the caller's own IAM
 * rights (`secretsmanager:GetSecretValue` on the secret the `JwtSecretArn` output names).
 */
export async function stackJwtSecret(
  stackName: string,
  region: string | undefined,
  outputs?: Readonly<Record<string, string>>,
): Promise<string> {
  const all = outputs ?? (await readStackOutputs(stackName, region));
  if (!Object.keys(all).some((k) => k.startsWith('JwtSecretArn')))
    throw new StackOutputError(
      `stack ${stackName} has no JwtSecretArn output: it does not sign tokens with a secret (OIDC mode?); ` +
        'use a token from its issuer',
    );
  const arn = stackOutput(all, 'JwtSecretArn', stackName);
  const secrets = new SecretsManagerClient({ region });
  const { SecretString } = await secrets.send(new GetSecretValueCommand({ SecretId: arn }));
  if (!SecretString) throw new StackOutputError(`secret ${arn} has no string value`);
  return SecretString;
}
