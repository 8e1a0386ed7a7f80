/**
 * The only file that listens, handles signals and exits. Start-up stops with one clear
 * message naming the variable or file when something is wrong.
 */
import closeWithGrace from 'close-with-grace'
import { pino } from 'pino'
import { buildApp, DEFAULT_HTTP_TIMEOUTS } from './app.js'
import { loadConfig, type Config } from './config.js'
import { ConfigError, PolicyLoadError } from './errors.js'
import { PolicyHolder } from './policy/load.js'
import { loadInWorker } from './policy/worker-load.js'
import { openGeoLookup, unavailableGeoLookup, type GeoLookup } from './signals/geo.js'
import { createHistoryStore, rateLimited, redisConnection, usesRedis } from './signals/create-history.js'
import { createRedisClient } from './signals/redis-history.js'
import { createMemoryAuditLog, type AuditLog } from './audit/audit-log.js'
import { createRedisAuditLog } from './audit/redis-audit-log.js'
import { createMetrics } from './metrics.js'
import { createPolicyReloader } from './policy/reloader.js'

function fail (message: string): never {
  console.error(`stepup-pdp: ${message}`)
  process.exit(1)
}

async function main (): Promise<void> {
  let config: Readonly<Config>
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message)
    throw err
  }
  // One line per decision: buffered (4 KB, flushed every second and at shutdown) rather than
  // one write(2) per line, which cost as much as the rest of the decision.
  const destination = pino.destination({ dest: 1, sync: false, minLength: 4096 })
  const logger = pino({ level: config.logLevel, base: { service: 'stepup-pdp' } }, destination)
  setInterval(() => { destination.flush() }, 1000).unref()

  let holder: PolicyHolder
  try {
    const { set, warnings } = await loadInWorker(config.policiesDir)
    holder = new PolicyHolder(set)
    for (const w of warnings) logger.warn({ file: w.file, line: w.line, field: w.field }, `policy warning: ${w.message}`)
  } catch (err) {
    if (err instanceof PolicyLoadError) fail(`POLICIES_DIR=${config.policiesDir}: ${err.message}`)
    throw err
  }

  // The geo database loads in the background (the bundled one takes about a second);
  // /readyz answers 503 and geo triggers fail closed until it is in.
  let geo: GeoLookup = unavailableGeoLookup('the geo database is still loading')
  const geoLoaded = openGeoLookup({
    path: config.geoipCityDb,
    onReload: err => err ? logger.error({ err: err.message }, 'geo database reload failed; serving the previous data') : logger.info('geo database reloaded')
  }).then(g => { geo = g; logger.info(g.describe(), 'geo database loaded') },
    (err: Error) => fail(`GEOIP_CITY_DB=${config.geoipCityDb ?? '(bundled)'}: cannot open the database: ${err.message}`))

  const history = createHistoryStore(config, logger)
  const metrics = createMetrics()
  const redisForAudit = usesRedis(config)
    ? createRedisClient({ ...redisConnection(config), commandTimeoutMs: Math.max(500, config.redisCommandTimeoutMs) })
    : undefined
  redisForAudit?.on('error', () => {})
  const audit: AuditLog = redisForAudit
    ? createRedisAuditLog(redisForAudit, { maxEntries: 100_000, onError: rateLimited(30_000, err => logger.warn({ err: err.message }, 'audit write to redis failed')) })
    : createMemoryAuditLog({ maxEntries: 10_000 })
  const reloader = createPolicyReloader({
    dir: config.policiesDir,
    holder,
    logger,
    onResult: r => metrics.reload(r.outcome, r.policies),
    onEvent: record => audit.append(record)
  })
  // Rate-limit counters: a client of its own, with the history's short timeout (a slow Redis
  // lets requests through rather than holding them).
  const rateLimitRedis = usesRedis(config) && config.rateLimitPerMinute + config.rateLimitSubjectEventsPerMinute > 0
    ? createRedisClient({ ...redisConnection(config), commandTimeoutMs: config.redisCommandTimeoutMs })
    : undefined
  rateLimitRedis?.on('error', () => {})
  const app = await buildApp(config, { policies: holder, geo: () => geo, history, logger, metrics, audit, reloader, ...(rateLimitRedis ? { rateLimitRedis } : {}) })

  reloader.watch()
  // SIGHUP is the operator's own request: it confirms removals.
  process.on('SIGHUP', () => { void reloader.reload('SIGHUP', { allowRemovals: true }).catch(() => undefined) })

  // SIGHUP reloads policies (above); every other termination signal drains and exits. The
  // grace period outlasts the request timeout, so a request in flight ends with its answer.
  closeWithGrace({ delay: DEFAULT_HTTP_TIMEOUTS.requestTimeoutMs + 5_000, skip: ['SIGHUP'] }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'shutting down after an error')
    else logger.info({ signal }, 'shutting down: draining in-flight requests')
    reloader.close()
    await app.close()
    await audit.close()
    redisForAudit?.disconnect()
    rateLimitRedis?.disconnect()
    await history.close()
    geo.close()
    destination.flushSync()
  })

  try {
    await app.listen({ port: config.port, host: config.host })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EADDRINUSE') fail(`PORT=${config.port}: the address ${config.host}:${config.port} is already in use (another stepup-pdp or another service?)`)
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') fail(`HOST=${config.host}: cannot listen on this address (${code})`)
    if (code === 'EACCES') fail(`PORT=${config.port}: permission denied (ports below 1024 need privileges)`)
    throw err
  }
  const auth = config.apiKeys.length > 0
    ? `API keys required (${config.apiKeys.length} configured)`
    : 'no API_KEYS set: listening on loopback only, without authentication'
  logger.info({
    policies: holder.current.policies.length,
    policiesDir: config.policiesDir,
    history: history.kind,
    auth
  }, `stepup-pdp listening on http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port} (${auth})`)
  await geoLoaded
}

main().catch(err => fail((err as Error).stack ?? String(err)))
