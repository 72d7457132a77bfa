// Why a WebSocket handshake failed, as far as a browser can tell: it reports every failure as a
// close (1006) without the HTTP status, so a refused token looked like a server that was down
// (issue 23: the pill stayed on "reconnecting" forever).

/** Does anything answer HTTP where the WebSocket URL points (any status counts)? */
export async function serverAnswers(wsUrl) {
  const url = new URL(wsUrl.replace(/^ws/, 'http'));
  url.search = ''; // the token stays out of it
  try {
    await fetch(url, { mode: 'no-cors', cache: 'no-store' });
    return true;
  } catch {
    return false;
  }
}

/** What to tell the person when the server answers but refused the handshake (401, 403, 429). */
export function refusedText(token) {
  const exp = expiresAtMs(token);
  if (exp !== undefined && exp <= Date.now())
    return `Your token expired at ${new Date(exp).toLocaleString()}: get a new one (npm run token) and Connect.`;
  return (
    'The server refused the connection: the token was rejected (wrong secret, malformed or expired), ' +
    'or too many connection attempts came from this address. Check the token and Connect again.'
  );
}

function expiresAtMs(token) {
  try {
    const claims = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    return typeof claims.exp === 'number' ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
