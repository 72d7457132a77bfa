import { newUser } from './local-stack';
import { type ServerFrame, TestClient, waitUntil } from './ws-client';

/** `users` users, `connections` each, `frames` frames each, all sent at once; resolves once each frame has its first answer. */
export async function burst(wsUrl: string, users: number, connections: number, frames: number) {
  const clients: TestClient[] = [];
  const ids: string[] = [];
  for (let u = 0; u < users; u++) {
    const { token } = await newUser(`g${u}`);
    const mine = await Promise.all(
      Array.from({ length: connections }, () => TestClient.connect(wsUrl, token)),
    );
    clients.push(...mine);
    for (let f = 0; f < frames; f++) ids.push(`u${u}-f${f}`);
  }
  for (const [i, id] of ids.entries()) {
    const user = Math.floor(i / frames);
    clients[user * connections + (i % connections)]!.send({
      action: 'sendMessage',
      requestId: id,
      message: `one two three four ${id}`,
    });
  }
  const all = () => clients.flatMap((c) => c.frames);
  const first = new Map<string, ServerFrame>();
  await waitUntil(() => {
    for (const f of all()) {
      const id = String(f.requestId);
      if (['message_accepted', 'request_queued', 'error'].includes(f.type) && !first.has(id))
        first.set(id, f);
    }
    return first.size >= ids.length;
  }, 60_000);
  return { clients, ids, all, first: [...first.values()] };
}
