// End to end: the official TypeScript client (@durable-streams/client) follows a workflow's
// token stream through flowgate's Durable Streams mapping, in SSE and in long-poll mode.
// The run is an external one created over HTTP, and records are appended over HTTP while
// the client follows; the client must see every record in order and then the close.
// Usage: node client-e2e.mjs BASE_URL   (exit status 0 = pass)
import "./with-key.mjs"
import assert from "node:assert/strict"
import { stream } from "@durable-streams/client"

const base = process.argv[2]
if (!base) throw new Error("usage: node client-e2e.mjs BASE_URL")

async function call(method, path, body) {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`)
  return r
}

async function follow(live) {
  const run = `e2e-${live}-${Date.now()}`
  await call("PUT", `/v1/workflows/${run}`, { workflow: "external" })
  const tokens = ["Hel", "lo", { text: ", wor", n: 3 }, "ld", "!"]
  await call("POST", `/v1/workflows/${run}/streams/tokens`, tokens.slice(0, 2))

  const res = await stream({
    url: `${base}/v1/stream/workflows/${run}/tokens`,
    offset: "-1",
    live,
  })
  const seen = []
  res.subscribeJson(async (batch) => {
    seen.push(...batch.items)
  })
  // `closed` resolves once the server signalled the end; the subscriber may still be
  // handing over the last batch, so wait (bounded) for it too.
  const done = (async () => {
    const deadline = Date.now() + 20000
    await Promise.race([res.closed, new Promise((r) => setTimeout(r, 20000))])
    while (seen.length < tokens.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20))
    }
  })()
  // Appended while the client is following.
  for (const t of tokens.slice(2)) {
    await new Promise((r) => setTimeout(r, 100))
    await call("POST", `/v1/workflows/${run}/streams/tokens`, [t])
  }
  await call("POST", `/v1/workflows/${run}/streams/tokens/close`)
  await done
  assert.deepEqual(seen, tokens)
  assert.equal(res.streamClosed, true)
  console.log(`client-e2e ${live}: ok (${seen.length} records, then closed)`)
}

for (const live of ["sse", "long-poll"]) {
  await follow(live)
}
