/** The `$connect` function's composition root: the per-address bucket and the connection registry. */
import { stackClock } from '../../core/clock';
import { ConnectAttempts } from '../connect-attempts';
import { ConnectionRegistry } from '../connections';
import { dynamoClient } from './common';
import { parseEdgeConfig } from './edge-config';
import { once } from './once';

export const connectRuntime = once(() => {
  const config = parseEdgeConfig('connect');
  const client = dynamoClient(config);
  return {
    config,
    attempts: new ConnectAttempts({
      client,
      tableName: config.tables.limits!,
      timeoutMs: config.limiterTimeoutMs,
    }),
    connections: new ConnectionRegistry({ client, tableName: config.tables.connections! }),
    now: stackClock,
  };
});
