import { Stack } from 'aws-cdk-lib';
import { Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';

/** The Bedrock action behind the Converse stream API, the only one the functions call. */
const INVOKE_STREAM = 'bedrock:InvokeModelWithResponseStream';

/**
 * Prefixes of system-defined cross-Region inference profiles and the Regions of their geography.
 * A `us.` profile routes only to US Regions, an `eu.` one only to EU Regions, and so on; `global.`
 * routes to any commercial Region. Set `inferenceRegions` to name the exact destination Regions.
 */
const GEOGRAPHY_REGIONS: Readonly<Record<string, readonly string[]>> = {
  'us-gov': ['us-gov-*'],
  us: ['us-*'],
  eu: ['eu-*'],
  apac: ['ap-*'],
  jp: ['ap-northeast-*'],
  au: ['ap-southeast-*'],
  ca: ['ca-*'],
  global: ['*'],
};

const PROFILE_PREFIX = new RegExp(`^(${Object.keys(GEOGRAPHY_REGIONS).join('|')})\\.(.+)$`);

export interface BedrockModelAccess {
  /** A foundation model id, or a cross-Region inference profile id (`us.anthropic.…`). */
  readonly modelId: string;
  /** The profile's destination Regions. @default the Regions of its geography */
  readonly inferenceRegions?: readonly string[];
}

export interface InferenceProfile {
  /** `us`, `eu`, `apac`, `global`, … */
  readonly geography: string;
  /** The model the profile serves, e.g. `anthropic.claude-3-5-haiku-20241022-v1:0`. */
  readonly foundationModelId: string;
  /** The configured destination Regions, or the Region patterns of its geography. */
  readonly regions: readonly string[];
}

/** The inference profile behind a model id, or undefined for a plain foundation model id. */
export function inferenceProfileOf(model: BedrockModelAccess): InferenceProfile | undefined {
  const match = PROFILE_PREFIX.exec(model.modelId);
  if (!match) return undefined;
  const geography = match[1]!;
  return {
    geography,
    foundationModelId: match[2]!,
    regions: model.inferenceRegions ?? GEOGRAPHY_REGIONS[geography]!,
  };
}

/**
 * Whether a stack in `region` can call the profile at all: a geographic profile is served only to
 * source Regions of its geography (a `us.` profile cannot be called from eu-west-1).
 */
export function isSourceRegionOf(profile: InferenceProfile, region: string): boolean {
  const patterns = GEOGRAPHY_REGIONS[profile.geography] ?? ['*'];
  return patterns.some((p) => new RegExp(`^${p.replaceAll('*', '.*')}$`).test(region));
}

/**
 * The statements that let a function stream from the configured model and nothing else.
 *
 * A foundation model id: that model in the stack's Region. An inference profile, as the Bedrock
 * user guide's "IAM policy requirements for Geographic cross-Region inference" lists: the profile
 * in the stack's Region, plus the underlying foundation model in the source Region and in every
 * destination Region (for `global.` also the Region-less model ARN). The model ARNs are usable
 * only through this profile (`bedrock:InferenceProfileArn` condition), so the function cannot
 * invoke the model directly in any Region.
 */
export function bedrockStatements(scope: Construct, model: BedrockModelAccess): PolicyStatement[] {
  const stack = Stack.of(scope);
  const modelArn = (region: string, modelId: string) =>
    stack.formatArn({
      service: 'bedrock',
      region,
      account: '',
      resource: 'foundation-model',
      resourceName: modelId,
    });
  const profile = inferenceProfileOf(model);
  if (!profile) {
    return [
      new PolicyStatement({
        effect: Effect.ALLOW,
        actions: [INVOKE_STREAM],
        resources: [modelArn(stack.region, model.modelId)],
      }),
    ];
  }
  const profileArn = stack.formatArn({
    service: 'bedrock',
    resource: 'inference-profile',
    resourceName: model.modelId,
  });
  const modelArns = [...new Set([stack.region, ...profile.regions])].map((r) =>
    modelArn(r, profile.foundationModelId),
  );
  if (profile.geography === 'global') modelArns.push(modelArn('', profile.foundationModelId));
  return [
    new PolicyStatement({ effect: Effect.ALLOW, actions: [INVOKE_STREAM], resources: [profileArn] }),
    new PolicyStatement({
      effect: Effect.ALLOW,
      actions: [INVOKE_STREAM],
      resources: modelArns,
      conditions: { StringEquals: { 'bedrock:InferenceProfileArn': profileArn } },
    }),
  ];
}
