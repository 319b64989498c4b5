// With CONFORMANCE_API_KEY set, every request made in this process carries the key as its
// bearer credential, unless the request sets its own Authorization: the subscription
// callbacks (`callback`, `ack`, `release`) send the wake's token there, which is what a
// keyed flowgate expects of them. Loaded by vitest (setupFiles) and by client-e2e.mjs.
const key = process.env.CONFORMANCE_API_KEY
if (key) {
  const base = globalThis.fetch
  globalThis.fetch = (input, init = {}) => {
    const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined))
    if (!headers.has("authorization")) headers.set("authorization", `Bearer ${key}`)
    return base(input, { ...init, headers })
  }
}
