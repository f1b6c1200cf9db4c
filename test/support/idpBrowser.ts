/**
 * A browser against the local IdP (localIdp.ts): requests that keep cookies and leave
 * redirects to the caller, and a whole sign-in from an authorization URL to the client's
 * loopback redirect.
 */

/** A browser's requests: redirects not followed (the caller follows them), cookies kept between requests. */
export function browserSession(): (url: URL, init?: RequestInit) => Promise<Response> {
  const cookies = new Map<string, string>();
  return async (url, init = {}) => {
    const response = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers as Record<string, string> | undefined), cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
    });
    for (const setCookie of response.headers.getSetCookie()) {
      const [pair = ''] = setCookie.split(';');
      const eq = pair.indexOf('=');
      const value = pair.slice(eq + 1).trim();
      if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(setCookie)) cookies.delete(pair.slice(0, eq).trim());
      else cookies.set(pair.slice(0, eq).trim(), value);
    }
    return response;
  };
}

/**
 * What a browser does with an authorization URL when `user` signs in at the local IdP:
 * follows redirects with cookies, fills in the login form, and finally loads the client's
 * loopback redirect (any URL whose path is /callback on another origin), whose response it
 * returns. Refusals by the IdP come back as that redirect's `error` parameters. `visited`, if
 * given, receives every URL loaded on the way (to replay one, as an attacker would).
 */
export async function signInInBrowser(authorizationUrl: URL, user: string, visitedUrls?: URL[]): Promise<Response> {
  const send = browserSession();
  let url = authorizationUrl;
  let response = await send(url);
  const visited: string[] = [];
  for (let hop = 0; hop < 20; hop++) {
    visited.push(`${url.host}${url.pathname}`);
    visitedUrls?.push(url);
    if (url.pathname === '/callback' && url.origin !== authorizationUrl.origin) return response;
    const location = response.headers.get('location');
    if (response.status === 200 && url.pathname.startsWith('/interaction/')) {
      await response.body?.cancel();
      url = new URL(`${url.pathname}/login`, url);
      response = await send(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ login: user }).toString(),
      });
      continue;
    }
    if (response.status < 300 || response.status >= 400 || !location)
      throw new Error(
        `the browser stopped at ${url.pathname} with HTTP ${response.status}: ${(await response.text()).replace(/<style>[\s\S]*<\/style>/, '').slice(0, 600)}`,
      );
    await response.body?.cancel();
    url = new URL(location, url);
    response = await send(url);
  }
  throw new Error(`the browser never reached the client's redirect: ${visited.join(' -> ')}`);
}
