// Starts the Durable Streams Node reference server (@durable-streams/server) for
// `flowgate bench --only durable`. Env: DS_HOST (127.0.0.1), DS_PORT (4437), DS_LONG_POLL_MS
// (500), DS_DATA_DIR (unset: in memory; set: file-backed, fsync per append).
import { DurableStreamTestServer } from "@durable-streams/server"

const opts = {
  host: process.env.DS_HOST ?? "127.0.0.1",
  port: Number(process.env.DS_PORT ?? 4437),
  longPollTimeout: Number(process.env.DS_LONG_POLL_MS ?? 500),
  compression: (process.env.DS_COMPRESSION ?? "1") !== "0",
  webhooks: false,
}
if (process.env.DS_DATA_DIR) opts.dataDir = process.env.DS_DATA_DIR

const server = new DurableStreamTestServer(opts)
const url = await server.start()
console.log(`listening on ${url} pid=${process.pid} opts=${JSON.stringify(opts)}`)

let stopping = false
async function shutdown() {
  if (stopping) return
  stopping = true
  const t = setTimeout(() => process.exit(1), 5000)
  t.unref()
  try { await server.stop() } finally { process.exit(0) }
}
process.on("SIGTERM", shutdown)
process.on("SIGINT", shutdown)
