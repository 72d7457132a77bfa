import { RemovalPolicy } from 'aws-cdk-lib';
import { type Attribute, AttributeType, Billing, ProjectionType, TableV2 } from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { type KeyDefinition, TABLES, type TableDefinition, type TableKey } from '../../lambda/core/resources';

export interface ChatTablesProps {
  /** Keep the tables (and their data) when the stack is deleted. @default true */
  readonly retainData?: boolean;
}

/**
 * The tables of `lambda/core/resources.ts`: on-demand, TTL on the shared attribute,
 * point-in-time recovery, encrypted with AWS-owned keys, deletion protection when data is kept.
 */
export class ChatTables extends Construct {
  public readonly tables: Readonly<Record<TableKey, TableV2>>;

  constructor(scope: Construct, id: string, props: ChatTablesProps = {}) {
    super(scope, id);
    const retain = props.retainData ?? true;
    const tables = {} as Record<TableKey, TableV2>;
    for (const key of Object.keys(TABLES) as TableKey[]) {
      const def: TableDefinition = TABLES[key];
      tables[key] = new TableV2(this, def.id, {
        partitionKey: attribute(def.partitionKey),
        sortKey: def.sortKey ? attribute(def.sortKey) : undefined,
        billing: Billing.onDemand(),
        timeToLiveAttribute: def.ttlAttribute,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        deletionProtection: retain,
        removalPolicy: retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
        globalSecondaryIndexes: def.globalIndexes?.map((index) => ({
          indexName: index.indexName,
          partitionKey: attribute(index.partitionKey),
          sortKey: index.sortKey ? attribute(index.sortKey) : undefined,
          ...(index.include?.length === 0
            ? { projectionType: ProjectionType.KEYS_ONLY }
            : index.include
              ? { projectionType: ProjectionType.INCLUDE, nonKeyAttributes: [...index.include] }
              : {}),
        })),
      });
    }
    this.tables = tables;
  }
}

function attribute(key: KeyDefinition): Attribute {
  return { name: key.name, type: key.type === 'S' ? AttributeType.STRING : AttributeType.NUMBER };
}
