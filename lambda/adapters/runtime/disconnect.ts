/** The `$disconnect` function's composition root: the connection registry alone. */
import { ConnectionRegistry } from '../connections';
import { dynamoClient } from './common';
import { parseEdgeConfig } from './edge-config';
import { once } from './once';

export const disconnectRuntime = once(() => {
  const config = parseEdgeConfig('disconnect');
  return {
    config,
    connections: new ConnectionRegistry({
      client: dynamoClient(config),
      tableName: config.tables.connections!,
    }),
  };
});
